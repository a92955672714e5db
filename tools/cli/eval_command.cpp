// `flexnn eval`: rebuilds a model from its checkpoint alone, and reports its clean accuracy and
// its accuracy under FGSM over a whole split (of the model's data set, or the one --data names),
// as a table and optionally as JSON.
#include "attacks/evaluation.hpp"
#include "engine/io/atomic_file.hpp"
#include "models/registry.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common_options.hpp"
#include "tools/cli/training_data.hpp"

#include <fmt/core.h>

#include <cmath>

namespace flexnn::cli {
namespace {

struct EvalCommand {
  CommonOptions common;
  std::string checkpoint, split = "test", attack, eps_space = "pixel", json, data;
  std::vector<float> eps;
  int64_t batch_size = 100, workers = 4;
  bool skip_bad = false;
};

void run(const EvalCommand& c) {
  apply_common_options(c.common);
  FLEXNN_CHECK(c.attack.empty() == c.eps.empty(), "eval: --attack {} needs --eps values (and --eps an --attack)",
               c.attack.empty() ? "(none)" : c.attack);
  const models::LoadedModel loaded = models::load_model(c.checkpoint);
  const Device device = selected_device(c.common);
  loaded.model->to(device);
  const models::ModelSpec spec = models::model_spec(loaded.config);
  const std::string dataset = c.data.empty() ? spec.dataset : c.data;
  const std::unique_ptr<datasets::ImageSource> data =
      open_split({dataset, data_dir(c.common, dataset), c.skip_bad}, spec, c.split);
  check_data_fits(*data, loaded.config, dataset);
  attacks::EvaluationOptions options{.batch_size = c.batch_size,
                                     .fgsm_eps = c.eps,
                                     .eps_space = attacks::parse_eps_space(c.eps_space),
                                     .normalization_std = loaded.config.value("std", std::vector<float>{1.0f}),
                                     .workers = c.workers};
  const attacks::EvaluationResult r = attacks::evaluate(*loaded.model, *data, options);

  fmt::print("model     {} (flex {})\n", loaded.config["model"].get<std::string>(),
             loaded.config.value("flex", std::string("-")));
  fmt::print("data      {} {}, {} images\n", dataset, c.split, r.n);
  fmt::print("device    {}\n", device.str());
  fmt::print("{:<24}{:>8.2f}%\n", "clean", r.clean_accuracy);
  for (const attacks::AttackResult& a : r.attacks)
    fmt::print("{:<24}{:>8.2f}%\n", fmt::format("{} eps={:g} ({})", a.name, a.eps, c.eps_space), a.accuracy);
  if (!std::isnan(r.pool_fraction)) fmt::print("{:<24}{:>8.2f}%\n", "units pooling (clean)", 100 * r.pool_fraction);
  fmt::print("({:.1f} s)\n", r.seconds);

  if (c.json.empty()) return;
  nlohmann::json attacks = nlohmann::json::array();
  for (const attacks::AttackResult& a : r.attacks)
    attacks.push_back({{"name", a.name}, {"eps", a.eps}, {"eps_space", c.eps_space}, {"accuracy", a.accuracy}});
  nlohmann::json out = {{"model", loaded.config},  {"checkpoint", c.checkpoint}, {"dataset", dataset},
                        {"split", c.split},        {"device", device.str()},    {"n", r.n},
                        {"clean_accuracy", r.clean_accuracy}, {"attacks", attacks}, {"seconds", r.seconds}};
  if (!std::isnan(r.pool_fraction)) out["pool_fraction"] = r.pool_fraction;
  write_text_atomically(c.json, out.dump(2) + "\n", "JSON");
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto c = std::make_shared<EvalCommand>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a checkpoint: clean accuracy and FGSM robustness");
  cmd->add_option("--checkpoint", c->checkpoint, "A model.safetensors written by flexnn")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--split", c->split, "Data split")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  cmd->add_option("--attack", c->attack, "Attack to run")->check(CLI::IsMember({"fgsm"}));
  cmd->add_option("--eps", c->eps, "Attack strengths, comma-separated (e.g. 0.1,0.2)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--eps-space", c->eps_space,
                  "pixel: eps in [0,1] pixel units; normalized: in normalised units, as the authors' notebooks")
      ->check(CLI::IsMember({"pixel", "normalized"}))
      ->capture_default_str();
  cmd->add_option("--batch-size", c->batch_size, "Batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--json", c->json, "Also write the results to this JSON file");
  cmd->add_option("--data", c->data, "Data set (default: the model's): fmnist, cifar10, imagenette, folder")
      ->check(CLI::IsMember({"fmnist", "cifar10", "imagenette", "folder"}));
  cmd->add_option("--workers", c->workers, "Threads that read and decode images (results do not depend on it)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--skip-bad", c->skip_bad, "imagenette, folder: skip (and count) unreadable image files");
  add_common_options(cmd, c->common);
  cmd->callback([c] { run(*c); });
}

}  // namespace flexnn::cli
