// `flexnn train`: trains one model with the paper's recipe into a run directory
// (tools/cli/training.hpp), resumable with --resume, on the model's data set or the one --data
// names (tools/cli/training_data.hpp).
#include "datasets/catalog.hpp"
#include "datasets/image_folder.hpp"
#include "kernels/cpu/parallel.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common_options.hpp"
#include "tools/cli/progress.hpp"
#include "tools/cli/training.hpp"
#include "tools/cli/training_data.hpp"

#include <fmt/core.h>

#include <functional>

namespace flexnn::cli {
namespace {

struct TrainCommand {
  CommonOptions common;
  TrainingOptions training;
  std::string model = "fmnist-small", flex, flex_mode, variant, data, out;
  double sharpness = 50, threshold_mean = 0.5, threshold_std = 0.1, uniform_threshold = 0.1;  // double: 0.3 stays 0.3 in the config
  int64_t image_size = 0;
  bool freeze_threshold = false, resume = false, skip_bad = false;
  float hflip = 0;
  CLI::Option* hflip_option = nullptr;
  struct ModelFlag {
    const char* key;  // in the model config
    CLI::Option* option;
    std::function<models::Config()> value;
  };
  std::vector<ModelFlag> model_flags;  // set only when given, so the model's own defaults apply otherwise
};

// "flex single", "variant flexible": the config's keys that name a network's variant, as given.
std::string variant_text(const models::Config& config) {
  std::string text;
  for (const char* key : {"flex", "flex_mode", "variant"})
    if (config.contains(key))
      text += fmt::format("{}{} {}", text.empty() ? "" : ", ", key, config[key].get<std::string>());
  return text.empty() ? "" : " (" + text + ")";
}

void run(TrainCommand& c) {
  apply_common_options(c.common);
  models::Config config = {{"model", c.model}};
  for (const TrainCommand::ModelFlag& flag : c.model_flags)
    if (flag.option->count() > 0) config[flag.key] = flag.value();
  const std::string data = c.data.empty() ? models::model_spec(config).dataset : c.data;
  TrainingOptions& t = c.training;
  t.model = config_for_data(config, data);
  t.data = data;
  t.hflip = c.hflip_option->count() > 0 ? c.hflip : default_hflip(data);
  t.device = selected_device(c.common);
  const DataOptions data_options{data, data_dir(c.common, data), c.skip_bad};
  const models::ModelSpec spec = models::model_spec(t.model);
  const std::unique_ptr<datasets::ImageSource> train_set = open_split(data_options, spec, "train");
  const std::unique_ptr<datasets::ImageSource> test_set = open_split(data_options, spec, "test");
  fmt::print("training {}{} on {} ({} train / {} test images{}) for {} epochs, seed {}, on {} ({} CPU thread(s))\n",
             c.model, variant_text(t.model), data,
             t.per_class > 0 ? t.per_class * train_set->num_classes() : train_set->size(),
             t.test_per_class > 0 ? t.test_per_class * test_set->num_classes() : test_set->size(),
             t.hflip > 0 ? fmt::format(", random horizontal flip p = {}", t.hflip) : "", t.epochs, t.seed,
             t.device.str(), cpu::num_threads());
  const TrainingRun run = train(t, *train_set, *test_set, c.out, c.resume,
                                ProgressBar::stdout_is_terminal() ? Output::progress_bar : Output::lines);
  for (const auto* source : {train_set.get(), test_set.get()})
    if (const auto* folder = dynamic_cast<const datasets::ImageFolder*>(source); folder && !folder->bad_files().empty())
      fmt::print("skipped {} unreadable file(s) in {}, e.g. {}\n", folder->bad_files().size(), folder->root().string(),
                 folder->bad_files().front().string());
  fmt::print("test accuracy {:.2f}%; wrote {}/model.safetensors, log.jsonl, summary.json\n",
             run.summary["test_accuracy"].get<double>(), c.out);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto c = std::make_shared<TrainCommand>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model with the paper's recipe (SGD, StepLR) into --out");
  TrainingOptions& t = c->training;
  t.workers = 4;
  cmd->add_option("--model", c->model, "Model name")->check(CLI::IsMember(models::model_names()))->capture_default_str();
  TrainCommand& f = *c;
  c->model_flags = {
      {"flex",
       cmd->add_option("--flex", f.flex,
                       "Flexible layers (default: the model's): fmnist-small none, standard, uniform, random, "
                       "reverse; vgg16 none, single, all; hmax (its gate) standard, reverse")
           ->check(CLI::IsMember({"none", "standard", "uniform", "random", "reverse", "single", "all"})),
       [&f] { return models::Config(f.flex); }},
      {"flex_mode",
       cmd->add_option("--flex-mode", f.flex_mode,
                       "vgg16: the flexible layers' gate, standard, uniform, random or reverse (default standard)")
           ->check(CLI::IsMember({"standard", "uniform", "random", "reverse"})),
       [&f] { return models::Config(f.flex_mode); }},
      {"variant", cmd->add_option("--variant", f.variant, "hmax: baseline, conv or flexible")
                      ->check(CLI::IsMember({"baseline", "conv", "flexible"})),
       [&f] { return models::Config(f.variant); }},
      {"image_size",
       cmd->add_option("--image-size", f.image_size,
                       "vgg16: the input's side (default 32 on cifar10, 224 on imagenette; the paper's Imagenette 254)")
           ->check(CLI::Range(1, 4096)),
       [&f] { return models::Config(f.image_size); }},
      {"sharpness",
       cmd->add_option("--sharpness", f.sharpness, "Gate sharpness s")->check(CLI::PositiveNumber)->capture_default_str(),
       [&f] { return models::Config(f.sharpness); }},
      {"threshold_mean",
       cmd->add_option("--threshold-mean", f.threshold_mean, "Initial thresholds' mean")->capture_default_str(),
       [&f] { return models::Config(f.threshold_mean); }},
      {"threshold_std",
       cmd->add_option("--threshold-std", f.threshold_std,
                       "Initial thresholds' std (N(0,1): --threshold-mean 0 --threshold-std 1)")
           ->check(CLI::NonNegativeNumber)
           ->capture_default_str(),
       [&f] { return models::Config(f.threshold_std); }},
      {"uniform_threshold",
       cmd->add_option("--uniform-threshold", f.uniform_threshold, "T of the uniform mode")->capture_default_str(),
       [&f] { return models::Config(f.uniform_threshold); }},
      {"freeze_threshold", cmd->add_flag("--freeze-threshold", f.freeze_threshold, "Keep thresholds fixed"),
       [&f] { return models::Config(f.freeze_threshold); }},
  };
  cmd->add_option("--epochs", t.epochs, "Training epochs")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--seed", t.seed, "Seed of initialisation, data order and masks")->capture_default_str();
  cmd->add_option("--batch-size", t.batch_size, "Batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--lr", t.lr, "SGD learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--momentum", t.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--weight-decay", t.weight_decay, "Weight decay (never on thresholds)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lr-step", t.lr_step, "StepLR step size in epochs")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--lr-gamma", t.lr_gamma, "StepLR factor")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--per-class", t.per_class, "Train on this many images per class (0: all)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--test-per-class", t.test_per_class,
                  "Test on this many images per class (a fixed balanced subset; 0: all)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--data", c->data, "Data set (default: the model's): fmnist, cifar10, imagenette, folder")
      ->check(CLI::IsMember({"fmnist", "cifar10", "imagenette", "folder"}));
  c->hflip_option = cmd->add_option("--hflip", c->hflip,
                                    "Probability of a random horizontal flip of each training image (default: 0.5 "
                                    "on cifar10 and imagenette, as the paper; else 0)")
                        ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--workers", t.workers, "Threads that read, decode and augment images (results do not depend on it)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--skip-bad", c->skip_bad, "imagenette, folder: skip (and count) unreadable image files");
  cmd->add_option("--out", c->out, "Run directory")->required();
  cmd->add_flag("--resume", c->resume, "Continue the run in --out where it stopped");
  add_common_options(cmd, c->common);
  cmd->callback([c] { run(*c); });
}

}  // namespace flexnn::cli
