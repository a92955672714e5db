// `flexnn attack`: rebuilds a model from its checkpoint, runs attacks on a split of its data set
// (or the one --data names) — FGSM sweeps, PGD, transfer from a source checkpoint, EOT-PGD,
// BPDA-PGD, APGD-CE / -DLR, Square, or the adaptive suite, each at every --eps, repeated R times —
// and prints every attack's accuracy (mean ± SEM over repeats), the per-example worst case at each
// ε and the warnings that an evaluation may overstate robustness; optionally as JSON and a chart.
#include "attacks/suite.hpp"
#include "attacks/worst_case.hpp"
#include "engine/generator.hpp"
#include "engine/io/atomic_file.hpp"
#include "models/registry.hpp"
#include "tools/cli/attack_chart.hpp"
#include "tools/cli/attack_plan.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common_options.hpp"
#include "tools/cli/progress.hpp"
#include "tools/cli/svg_chart.hpp"
#include "tools/cli/training_data.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <ranges>

namespace flexnn::cli {
namespace {

struct AttackCommand {
  CommonOptions common;
  AttackPlan plan;
  std::string checkpoint, source, split = "test", data, json, svg, norm = "linf", eps_space = "pixel";
  float step_size = 0;
  int repeats = 1;
  uint64_t seed = 0;
  int64_t batch_size = 100, workers = 4, per_class = 0;
  bool skip_bad = false, per_example = false;
  CLI::Option* step_size_option = nullptr;
};

void run(AttackCommand& c) {
  apply_common_options(c.common);
  AttackPlan& plan = c.plan;
  plan.norm = attacks::parse_norm(c.norm);
  plan.space = attacks::parse_eps_space(c.eps_space);
  if (c.step_size_option->count() > 0) plan.step_size = c.step_size;
  check_plan(plan, "attack");
  FLEXNN_CHECK(c.source.empty() || plan_needs_source(plan) ||
                   std::find(plan.attacks.begin(), plan.attacks.end(), "suite") != plan.attacks.end(),
               "attack: --source is used only by the transfer attack and the suite (found --attack {})",
               fmt::join(plan.attacks, ","));
  FLEXNN_CHECK(!plan_needs_source(plan) || !c.source.empty(),
               "attack: the transfer attack crafts its examples on a source model: give --source CHECKPOINT");

  const Device device = selected_device(c.common);
  // Random masks come from generators of the models' own, seeded by --seed: the results depend on
  // the seed alone, not on what else was loaded.
  Generator target_masks(c.seed), source_masks(c.seed + 1);
  const models::LoadedModel target = models::load_model(c.checkpoint, target_masks);
  target.model->to(device);
  std::optional<models::LoadedModel> source;
  if (!c.source.empty()) {
    source = models::load_model(c.source, source_masks);
    source->model->to(device);
  }
  const models::ModelSpec spec = models::model_spec(target.config);
  const std::string dataset = c.data.empty() ? spec.dataset : c.data;
  FLEXNN_CHECK(c.per_class == 0 || held_in_memory(dataset),
               "attack: --per-class needs a data set held in memory (fmnist, cifar10), but {} streams its images "
               "from disk", dataset);
  const std::unique_ptr<datasets::ImageSource> split =
      open_split({dataset, data_dir(c.common, dataset), c.skip_bad}, spec, c.split);
  check_data_fits(*split, target.config, dataset);
  if (source) check_data_fits(*split, source->config, dataset);
  const std::optional<datasets::ImageDatasetSource> subset =
      balanced_subset(*split, c.per_class, 0, dataset, "--per-class");
  const datasets::ImageSource& data = subset ? static_cast<const datasets::ImageSource&>(*subset) : *split;

  const std::vector<attacks::AttackSpec> specs =
      plan_specs(plan, *target.model, target.config, source ? source->model.get() : nullptr);
  fmt::print("model     {} ({})\n", target.config["model"].get<std::string>(), c.checkpoint);
  if (source) fmt::print("source    {} ({})\n", source->config["model"].get<std::string>(), c.source);
  fmt::print("data      {} {}, {} images\n", dataset, c.split, data.size());
  fmt::print("device    {}\n", device.str());
  fmt::print("attacks   {} x {} repeat(s)\n",
             fmt::join(specs | std::views::transform([](const attacks::AttackSpec& s) {
                         return fmt::format("{}@{:g}", s.name, s.threat.eps);
                       }),
                       ", "),
             c.repeats);
  std::fflush(stdout);

  const bool terminal = ProgressBar::stdout_is_terminal();
  attacks::RunOptions options{.batch_size = c.batch_size,
                              .repeats = c.repeats,
                              .seed = c.seed,
                              .workers = c.workers,
                              .on_batch = [terminal](int64_t done, int64_t total) {
                                if (!terminal) return;
                                fmt::print("\rattacked {}/{} images", done, total);
                                std::fflush(stdout);
                              }};
  const attacks::AttackReport report = attacks::run_attacks(*target.model, data, specs, options);
  if (terminal) fmt::print("\n");
  print_report(report, plan);
  fmt::print("({:.1f} s)\n", report.seconds);

  nlohmann::json out = attacks::report_json(report, c.per_example);
  if (!c.svg.empty()) {
    std::vector<Measure> rows;
    MeasuredSeries series{target.config["model"].get<std::string>(), {}};
    for (const auto& [measure, value] : report_measures(out)) add_measure(rows, measure), series.values[measure.key] = value;
    write_svg_file(c.svg, attack_chart_svg(fmt::format("{} on {} {} ({} images)", c.checkpoint, dataset, c.split,
                                                       report.n),
                                           rows, {series}));
    fmt::print("wrote {}\n", c.svg);
  }
  if (c.json.empty()) return;
  out["model"] = target.config;
  out["checkpoint"] = c.checkpoint;
  if (source) out["source"] = {{"model", source->config}, {"checkpoint", c.source}};
  out["dataset"] = dataset, out["split"] = c.split, out["device"] = device.str();
  out["plan"] = to_json(plan);
  out["repeats"] = c.repeats, out["seed"] = c.seed;
  write_text_atomically(c.json, out.dump(2) + "\n", "JSON");
  fmt::print("wrote {}\n", c.json);
}

}  // namespace

void add_attack_command(CLI::App& app) {
  auto c = std::make_shared<AttackCommand>();
  CLI::App* cmd = app.add_subcommand(
      "attack", "Attack a checkpoint: FGSM, PGD, transfer, EOT, BPDA, APGD, Square or the adaptive suite, with the "
                "per-example worst case");
  AttackPlan& plan = c->plan;
  std::vector<std::string> names = attacks::attack_names();
  names.push_back("suite");
  cmd->add_option("--checkpoint", c->checkpoint, "A model.safetensors written by flexnn")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--attack", plan.attacks,
                  "Attacks, comma-separated: fgsm, pgd, transfer, eot-pgd, bpda-pgd, apgd-ce, apgd-dlr, square, or "
                  "suite (pgd, apgd-ce, apgd-dlr, square, plus bpda-pgd for threshold gates, EOT for random masks, "
                  "transfer with --source)")
      ->required()
      ->delimiter(',')
      ->check(CLI::IsMember(names));
  cmd->add_option("--eps", plan.eps, "Strengths, comma-separated; every attack runs at each (e.g. 0.031)")
      ->required()
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--norm", c->norm, "Threat model: linf or l2")
      ->check(CLI::IsMember({"linf", "l2"}))
      ->capture_default_str();
  cmd->add_option("--eps-space", c->eps_space,
                  "pixel: eps in [0,1] pixel units; normalized: in normalised units, as the authors' notebooks")
      ->check(CLI::IsMember({"pixel", "normalized"}))
      ->capture_default_str();
  cmd->add_option("--source", c->source, "transfer (and suite): the checkpoint to craft the examples on")
      ->check(CLI::ExistingFile);
  cmd->add_option("--repeats", c->repeats, "Runs of each attack (new random starts and masks); mean ± SEM")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", c->seed, "Seed of the attacks' random draws and of a random-mask model's masks")
      ->capture_default_str();
  cmd->add_option("--steps", plan.steps, "PGD family: steps")->check(CLI::Range(1, 100000))->capture_default_str();
  c->step_size_option = cmd->add_option("--step-size", c->step_size,
                                        "PGD family: step size in eps units (default: eps x 0.003 / 0.031, TRADES' "
                                        "0.003 at 0.031)")
                            ->check(CLI::PositiveNumber);
  cmd->add_option("--restarts", plan.restarts, "PGD family and APGD: random restarts (per-example worst kept)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--apgd-iterations", plan.apgd_iterations, "APGD: iterations")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--queries", plan.square_queries, "Square: queries per example")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--eot-samples", plan.eot_samples, "EOT: forward passes averaged per gradient")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--bpda-sharpness", plan.bpda_sharpness, "BPDA: the gates' backward sharpness (the forward's is 50)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--split", c->split, "Data split")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  cmd->add_option("--per-class", c->per_class, "Attack this many images per class (0: the whole split)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--batch-size", c->batch_size, "Batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--data", c->data, "Data set (default: the model's): fmnist, cifar10, imagenette, folder")
      ->check(CLI::IsMember({"fmnist", "cifar10", "imagenette", "folder"}));
  cmd->add_option("--workers", c->workers, "Threads that read and decode images (results do not depend on it)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--skip-bad", c->skip_bad, "imagenette, folder: skip (and count) unreadable image files");
  CLI::Option* json = cmd->add_option("--json", c->json, "Also write the results to this JSON file");
  cmd->add_flag("--per-example", c->per_example, "With --json: also each example's verdicts and worst-case margin")
      ->needs(json);
  cmd->add_option("--svg", c->svg, "Also draw the accuracies (against eps where an attack sweeps it) in this SVG file");
  add_common_options(cmd, c->common);
  cmd->callback([c] { run(*c); });
}

}  // namespace flexnn::cli
