// `flexnn train`: trains one model with the paper's recipe into a run directory
// (tools/cli/training.hpp), resumable with --resume.
#include "datasets/catalog.hpp"
#include "kernels/cpu/parallel.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common_options.hpp"
#include "tools/cli/progress.hpp"
#include "tools/cli/training.hpp"

#include <fmt/core.h>

#include <functional>

namespace flexnn::cli {
namespace {

struct TrainCommand {
  CommonOptions common;
  TrainingOptions training;
  std::string model = "fmnist-small", flex = "standard", out;
  double sharpness = 50, threshold_mean = 0.5, threshold_std = 0.1, uniform_threshold = 0.1;  // double: 0.3 stays 0.3 in the config
  bool freeze_threshold = false, resume = false;
  struct ModelFlag {
    const char* key;  // in the model config
    CLI::Option* option;
    std::function<models::Config()> value;
  };
  std::vector<ModelFlag> model_flags;  // set only when given, so the model's own defaults apply otherwise
};

void run(TrainCommand& c) {
  apply_common_options(c.common);
  models::Config config = {{"model", c.model}};
  for (const TrainCommand::ModelFlag& flag : c.model_flags)
    if (flag.option->count() > 0) config[flag.key] = flag.value();
  c.training.model = models::complete_config(config);
  c.training.device = selected_device(c.common);
  const std::string dataset = models::model_spec(c.training.model).dataset;
  const std::filesystem::path dir = data_dir(c.common, dataset);
  const datasets::ImageDataset train_set = datasets::load_dataset(dataset, dir, "train");
  const datasets::ImageDataset test_set = datasets::load_dataset(dataset, dir, "test");
  fmt::print("training {} (flex {}) on {} ({} train / {} test images) for {} epochs, seed {}, on {} ({} CPU thread(s))\n",
             c.model, c.training.model.value("flex", std::string("-")), dataset,
             c.training.per_class > 0 ? c.training.per_class * train_set.num_classes() : train_set.size(),
             test_set.size(), c.training.epochs, c.training.seed, c.training.device.str(), cpu::num_threads());
  const TrainingRun run = train(c.training, train_set, test_set, c.out, c.resume,
                                ProgressBar::stdout_is_terminal() ? Output::progress_bar : Output::lines);
  fmt::print("test accuracy {:.2f}%; wrote {}/model.safetensors, log.jsonl, summary.json\n",
             run.summary["test_accuracy"].get<double>(), c.out);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto c = std::make_shared<TrainCommand>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model with the paper's recipe (SGD, StepLR) into --out");
  TrainingOptions& t = c->training;
  cmd->add_option("--model", c->model, "Model name")->check(CLI::IsMember(models::model_names()))->capture_default_str();
  TrainCommand& f = *c;
  c->model_flags = {
      {"flex",
       cmd->add_option("--flex", f.flex, "Flexible mode: none, standard, uniform, random, reverse")
           ->check(CLI::IsMember({"none", "standard", "uniform", "random", "reverse"}))
           ->capture_default_str(),
       [&f] { return models::Config(f.flex); }},
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
  cmd->add_option("--out", c->out, "Run directory")->required();
  cmd->add_flag("--resume", c->resume, "Continue the run in --out where it stopped");
  add_common_options(cmd, c->common);
  cmd->callback([c] { run(*c); });
}

}  // namespace flexnn::cli
