// The Table 2 experiment: runs, statistics over seeds, and the report.
#include "tools/cli/table2.hpp"

#include "attacks/evaluation.hpp"
#include "engine/io/atomic_file.hpp"
#include "models/registry.hpp"
#include "tools/cli/mean_sem.hpp"
#include "tools/cli/svg_chart.hpp"
#include "tools/cli/training.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

namespace flexnn::cli {
namespace {

using Json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The paper's Table 2 (10 networks each, FGSM ε = 0.1 in the authors' normalised units). It has no
// row for the random mode.
struct PaperRow {
  const char* variant;
  const char* name;
  double clean, clean_sem, fgsm, fgsm_sem;
};
constexpr PaperRow kPaper[] = {
    {"none", "baseline", 87.7, 0.54, 27.3, 0.89},
    {"uniform", "uniform threshold", 86.3, 0.50, 44.4, 0.82},
    {"standard", "standard threshold", 85.2, 0.53, 36.4, 0.85},
    {"reverse", "standard reverse threshold", 84.6, 0.93, 31.9, 1.12},
    {"random", "random mask", kNaN, kNaN, kNaN, kNaN},
};

const PaperRow& paper_row(const std::string& variant) {
  for (const PaperRow& row : kPaper)
    if (variant == row.variant) return row;
  fail("table2: unknown variant '{}': expected none, uniform, standard, reverse or random", variant);
}

// A JSON number, or NaN for null (a missing paper value, a SEM of one seed).
double value(const Json& j) { return j.is_number() ? j.get<double>() : kNaN; }

std::string cell(double mean, double sem) {
  if (std::isnan(mean)) return "—";
  return std::isnan(sem) ? fmt::format("{:.1f}", mean) : fmt::format("{:.1f} ± {:.2f}", mean, sem);
}

// Trains one (variant, seed) run, or resumes or reuses it, and returns its evaluation.
attacks::EvaluationResult run_one(const Table2Options& o, const std::string& variant, int64_t seed,
                                  const datasets::ImageDataset& train_set, const datasets::ImageDataset& test_set) {
  const std::filesystem::path dir = o.out / variant / fmt::format("seed{}", seed);
  TrainingOptions t;
  t.model = {{"model", "fmnist-small"}, {"flex", variant}};
  t.epochs = o.epochs;
  t.seed = static_cast<uint64_t>(seed);
  t.per_class = o.per_class;
  t.evaluate_each_epoch = false;
  t.device = o.device;
  std::shared_ptr<nn::Module> model;
  models::Config config;
  const std::filesystem::path summary = dir / "summary.json";
  bool finished = false;
  if (std::filesystem::exists(summary)) {
    std::ifstream in(summary);
    const Json done = Json::parse(in, nullptr, false);
    finished = !done.is_discarded() && done.value("training", Json()) == to_json(t);
  }
  if (finished) {
    models::LoadedModel loaded = models::load_model(dir / "model.safetensors");
    model = loaded.model;
    model->to(o.device);
    config = loaded.config;
  } else {
    const bool resume = std::filesystem::exists(dir / "train_state.safetensors");
    TrainingRun run = train(t, train_set, test_set, dir, resume, Output::quiet);
    model = run.model;
    config = run.config;
  }
  // The evaluation's random masks come from a seed of their own, so a reused run scores the same
  // as a freshly trained one.
  manual_seed(static_cast<uint64_t>(seed) + 1000);
  return attacks::evaluate(*model, test_set,
                           {.batch_size = 100,
                            .fgsm_eps = {o.eps},
                            .eps_space = attacks::parse_eps_space(o.eps_space),
                            .normalization_std = config["std"].get<std::vector<float>>()});
}

}  // namespace

Json run_table2(const Table2Options& o, const datasets::ImageDataset& train_set,
                const datasets::ImageDataset& test_set) {
  FLEXNN_CHECK(o.epochs > 0 && o.seeds > 0, "table2: epochs ({}) and seeds ({}) must be positive", o.epochs, o.seeds);
  for (const std::string& v : o.variants) (void)paper_row(v);
  std::filesystem::create_directories(o.out);
  const auto start = std::chrono::steady_clock::now();
  fmt::print("Table 2: fmnist-small, {} epoch(s) x {} seed(s){}, FGSM eps {} ({} space){}\n", o.epochs, o.seeds,
             o.per_class > 0 ? fmt::format(", {} training images per class", o.per_class) : "", o.eps, o.eps_space,
             o.label.empty() ? "" : fmt::format(" [{}]", o.label));
  std::fflush(stdout);

  Json rows = Json::array();
  for (const std::string& variant : o.variants) {
    std::vector<double> clean, fgsm, pool;
    for (int64_t seed = 1; seed <= o.seeds; ++seed) {
      const attacks::EvaluationResult r = run_one(o, variant, seed, train_set, test_set);
      clean.push_back(r.clean_accuracy);
      fgsm.push_back(r.attacks.at(0).accuracy);
      if (!std::isnan(r.pool_fraction)) pool.push_back(100 * r.pool_fraction);
      fmt::print("  {:<9} seed {:<3} clean {:6.2f}%  FGSM {:6.2f}%{}  ({:.0f} s elapsed)\n", variant, seed,
                 r.clean_accuracy, r.attacks.at(0).accuracy,
                 std::isnan(r.pool_fraction) ? "" : fmt::format("  pooling {:5.1f}%", 100 * r.pool_fraction),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      std::fflush(stdout);  // a long run's log shows each network as it finishes
    }
    const MeanSem c = mean_sem(clean), f = mean_sem(fgsm);
    const PaperRow& paper = paper_row(variant);
    rows.push_back({{"variant", variant},
                    {"name", paper.name},
                    {"clean", clean},
                    {"fgsm", fgsm},
                    {"clean_mean", c.mean},
                    {"clean_sem", c.sem},
                    {"fgsm_mean", f.mean},
                    {"fgsm_sem", f.sem},
                    {"pool_percent_mean", pool.empty() ? kNaN : mean_sem(pool).mean},
                    {"paper", {{"clean", paper.clean}, {"clean_sem", paper.clean_sem}, {"fgsm", paper.fgsm},
                               {"fgsm_sem", paper.fgsm_sem}}}});
  }

  fmt::print("\n{:<28}{:>16}{:>16}{:>16}{:>16}\n", "network", "paper clean %", "ours clean %", "paper FGSM %",
             "ours FGSM %");
  for (const Json& r : rows) {
    const Json& p = r["paper"];
    fmt::print("{:<28}{:>16}{:>16}{:>16}{:>16}\n", r["name"].get<std::string>(),
               cell(value(p["clean"]), value(p["clean_sem"])), cell(value(r["clean_mean"]), value(r["clean_sem"])),
               cell(value(p["fgsm"]), value(p["fgsm_sem"])), cell(value(r["fgsm_mean"]), value(r["fgsm_sem"])));
  }
  fmt::print("mean ± SEM over seeds; the paper: 10 seeds, its own training length, FGSM eps in normalised units\n");

  BarChart chart{.title = fmt::format("Table 2: fmnist-small, {} epochs x {} seeds, FGSM eps {} ({})", o.epochs,
                                      o.seeds, o.eps, o.eps_space),
                 .y_label = "test accuracy (%)",
                 .categories = {},
                 .series = {},
                 .y_min = 0,
                 .y_max = 100};
  Series paper_clean{"paper clean", {}, {}}, ours_clean{"ours clean", {}, {}}, paper_fgsm{"paper FGSM", {}, {}},
      ours_fgsm{"ours FGSM", {}, {}};
  for (const Json& r : rows) {
    chart.categories.push_back(r["variant"].get<std::string>());
    paper_clean.values.push_back(value(r["paper"]["clean"]));
    paper_clean.errors.push_back(value(r["paper"]["clean_sem"]));
    ours_clean.values.push_back(value(r["clean_mean"]));
    ours_clean.errors.push_back(value(r["clean_sem"]));
    paper_fgsm.values.push_back(value(r["paper"]["fgsm"]));
    paper_fgsm.errors.push_back(value(r["paper"]["fgsm_sem"]));
    ours_fgsm.values.push_back(value(r["fgsm_mean"]));
    ours_fgsm.errors.push_back(value(r["fgsm_sem"]));
  }
  chart.series = {paper_clean, ours_clean, paper_fgsm, ours_fgsm};
  write_svg_file(o.out / "table2.svg", render_svg(chart));
  const Json report = {{"experiment", "table2"},
                       {"label", o.label},
                       {"model", "fmnist-small"},
                       {"epochs", o.epochs},
                       {"seeds", o.seeds},
                       {"per_class", o.per_class},
                       {"eps", o.eps},
                       {"eps_space", o.eps_space},
                       {"rows", rows},
                       {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  write_text_atomically(o.out / "table2.json", report.dump(2) + "\n", "JSON");
  fmt::print("wrote {} and {}\n", (o.out / "table2.json").string(), (o.out / "table2.svg").string());
  return report;
}

}  // namespace flexnn::cli
