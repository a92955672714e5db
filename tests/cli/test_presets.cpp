// `flexnn reproduce NAME` for the JSON presets, run as real processes on a synthetic CIFAR-10
// written in the real format: a test-only preset (found through FLEXNN_PRESETS_DIR) writes the
// per-epoch accuracies of every run, their mean and SEM over seeds, and a line chart, reuses
// finished runs and continues them when asked for more epochs; --quick takes the preset's quick
// settings; a bad preset or a model the registry lacks is an error naming it, before anything
// trains; the shipped fig4b runs with --quick and the command line's overrides; fig4a names HMAX
// while it is not registered, and runs once it is.
#include <catch2/catch.hpp>

#include "cli/cli_files.hpp"
#include "cli/run_cli.hpp"
#include "models/registry.hpp"
#include "temp_dir.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using flexnn::testing::count_occurrences;
using Catch::Contains;
using flexnn::testing::CliResult;
using flexnn::testing::read_json;
using flexnn::testing::read_jsonl;
using flexnn::testing::read_text;
using flexnn::testing::run_cli;
using flexnn::testing::run_ok;
using flexnn::testing::shared_cifar10_dir;
using flexnn::testing::use_preset;
using flexnn::testing::TempDir;
using Json = nlohmann::json;

namespace {

// Two conv2d-surrogate variants that differ only in learning rate.
Json tiny_preset() {
  return {{"title", "Tiny test preset"},
          {"data", "cifar10"},
          {"epochs", 2},
          {"seeds", 2},
          {"training", {{"batch_size", 10}, {"lr", 0.01}, {"per_class", 2}, {"test_per_class", 3}}},
          {"quick", {{"epochs", 1}, {"seeds", 1}}},
          {"runs",
           {{{"variant", "slow"}, {"label", "Surrogate, lr 0.001"}, {"model", {{"model", "conv2d-surrogate"}}},
             {"training", {{"lr", 0.001}}}},
            {{"variant", "fast"}, {"label", "Surrogate, lr 0.01"}, {"model", {{"model", "conv2d-surrogate"}}}}}}};
}

}  // namespace

TEST_CASE("flexnn reproduce runs a preset: per-epoch accuracy, mean and SEM over seeds, a chart, reused runs",
          "[cli][presets]") {
  TempDir tmp("preset");
  use_preset(tmp.path() / "presets", "tiny", tiny_preset());
  const fs::path out = tmp.path() / "out";
  const std::string command =
      fmt::format("reproduce tiny --data-dir {} --out {} --threads 2", shared_cifar10_dir(), out.string());
  const CliResult first = run_ok(command);
  CHECK_THAT(first.output, Contains("Tiny test preset") && Contains("Surrogate, lr 0.001"));

  const Json report = read_json(out / "tiny.json");
  CHECK(report.at("experiment") == "tiny");
  CHECK(report.at("epochs") == 2);
  CHECK(report.at("seeds") == 2);
  const Json& variants = report.at("variants");
  REQUIRE(variants.size() == 2);
  CHECK(variants[0].at("variant") == "slow");
  CHECK(variants[1].at("variant") == "fast");
  for (const Json& v : variants) {
    INFO(v.dump());
    const std::string variant = v.at("variant");
    // Each seed's curve is its run's log, and the statistics are over seeds, epoch by epoch.
    REQUIRE(v.at("test_accuracy").size() == 2);
    for (int seed = 1; seed <= 2; ++seed) {
      const fs::path run = out / variant / fmt::format("seed{}", seed);
      const auto log = read_jsonl(run / "log.jsonl");
      REQUIRE(log.size() == 2);
      for (size_t e = 0; e < 2; ++e) CHECK(v["test_accuracy"][seed - 1][e] == log[e].at("test_accuracy"));
      const Json training = read_json(run / "summary.json").at("training");
      CHECK(training.at("lr").get<double>() == (variant == "slow" ? 0.001 : 0.01));
      CHECK(training.at("seed") == seed);
      CHECK(training.at("hflip").get<double>() == 0.5);  // CIFAR-10's default
      CHECK(training.at("test_per_class") == 3);
    }
    for (size_t e = 0; e < 2; ++e) {
      const double a = v["test_accuracy"][0][e], b = v["test_accuracy"][1][e];
      CHECK(v.at("mean")[e].get<double>() == Approx((a + b) / 2));
      CHECK(v.at("sem")[e].get<double>() == Approx(std::abs(a - b) / 2).margin(1e-12));  // two values: |a - b| / 2
    }
    CHECK(v.at("final_mean") == v.at("mean")[1]);
    CHECK(v.at("training").at("lr") == (variant == "slow" ? 0.001 : 0.01));
  }
  // The chart: one line per variant, a point per epoch, labelled by the legend.
  const std::string svg = read_text(out / "tiny.svg");
  CHECK_THAT(svg, Catch::StartsWith("<svg") && Contains("Surrogate, lr 0.001") && Contains("Surrogate, lr 0.01"));
  CHECK(count_occurrences(svg, "<g class=\"series\"") == 2);
  CHECK(count_occurrences(svg, "<circle class=\"point\"") == 4);

  // Run again: every run is reused as it is, and the report is the same.
  std::vector<fs::file_time_type> trained;
  for (const char* run : {"slow/seed1", "slow/seed2", "fast/seed1", "fast/seed2"})
    trained.push_back(fs::last_write_time(out / run / "model.safetensors"));
  run_ok(command);
  CHECK(read_json(out / "tiny.json").at("variants") == variants);
  size_t i = 0;
  for (const char* run : {"slow/seed1", "slow/seed2", "fast/seed1", "fast/seed2"})
    CHECK(fs::last_write_time(out / run / "model.safetensors") == trained[i++]);

  // More epochs continue the runs: the first two epochs are those already run.
  run_ok(command + " --epochs 3 --variants fast");
  const Json longer = read_json(out / "tiny.json");
  REQUIRE(longer.at("variants").size() == 1);
  for (int seed = 0; seed < 2; ++seed) {
    const Json& curve = longer["variants"][0]["test_accuracy"][seed];
    REQUIRE(curve.size() == 3);
    CHECK(curve[0] == variants[1]["test_accuracy"][seed][0]);
    CHECK(curve[1] == variants[1]["test_accuracy"][seed][1]);
  }
}

TEST_CASE("flexnn reproduce --quick takes the preset's quick settings", "[cli][presets]") {
  TempDir tmp("quick");
  use_preset(tmp.path() / "presets", "tiny", tiny_preset());
  run_ok(fmt::format("reproduce tiny --quick --data-dir {} --out {} --threads 2", shared_cifar10_dir(), tmp.str("out")));
  const Json report = read_json(tmp.path() / "out" / "tiny.json");
  CHECK(report.at("label") == "quick");
  CHECK(report.at("epochs") == 1);
  CHECK(report.at("seeds") == 1);
  CHECK(report.at("variants")[0].at("test_accuracy").size() == 1);
  CHECK(fs::exists(tmp.path() / "out" / "fast" / "seed1"));
  CHECK_FALSE(fs::exists(tmp.path() / "out" / "fast" / "seed2"));
}

TEST_CASE("flexnn reproduce names what is wrong with a preset before training anything", "[cli][presets]") {
  TempDir tmp("bad_preset");
  const fs::path presets = tmp.path() / "presets";
  Json missing_model = tiny_preset();
  missing_model["runs"][1]["model"] = {{"model", "no-such-net"}, {"variant", "x"}};
  use_preset(presets, "missing", missing_model);
  Json misspelt = tiny_preset();
  misspelt["epoch"] = 3;
  use_preset(presets, "misspelt", misspelt);
  Json bad_option = tiny_preset();
  bad_option["training"]["learning_rate"] = 0.1;
  use_preset(presets, "option", bad_option);

  const auto expect_error = [&](const std::string& name, const std::vector<std::string>& words,
                                const std::string& extra = "") {
    const CliResult r = run_cli(fmt::format("reproduce {} --data-dir {} --out {} {}", name, shared_cifar10_dir(),
                                            tmp.str(name), extra));
    INFO(r.output);
    CHECK(r.status == 1);
    for (const std::string& word : words) CHECK_THAT(r.output, Contains(word));
    CHECK_FALSE(fs::exists(tmp.path() / name / "slow"));  // nothing trained
  };
  expect_error("missing", {"error:", "no-such-net", "fast"});
  expect_error("misspelt", {"error:", "\"epoch\"", "misspelt.json"});
  expect_error("option", {"error:", "learning_rate"});
  expect_error("missing", {"error:", "'medium'"}, "--variants medium");
}

TEST_CASE("flexnn reproduce fig4b --quick runs the paper's three VGG16 networks", "[cli][presets]") {
  unsetenv("FLEXNN_PRESETS_DIR");
  TempDir tmp("fig4b");
  const fs::path out = tmp.path() / "fig4b";
  run_ok(fmt::format("reproduce fig4b --quick --epochs 1 --seeds 1 --per-class 2 --test-per-class 1 --batch-size 10 "
                     "--variants baseline,random --data-dir {} --out {} --threads 2",
                     shared_cifar10_dir(), out.string()));
  const Json report = read_json(out / "fig4b.json");
  CHECK(report.at("label") == "quick");
  CHECK(report.at("seeds") == 1);  // the flag over the preset's quick seeds
  const Json& variants = report.at("variants");
  REQUIRE(variants.size() == 2);
  CHECK(variants[0].at("model").at("model") == "vgg16");
  CHECK(variants[0].at("model").at("flex") == "none");
  CHECK(variants[1].at("model").at("flex") == "single");
  CHECK(variants[1].at("model").at("flex_mode") == "random");
  for (const Json& v : variants) {
    CHECK(v.at("training").at("hflip").get<double>() == 0.5);
    CHECK(v.at("training").at("lr").get<double>() == 0.001);
    CHECK(v.at("training").at("per_class") == 2);
    CHECK(v.at("test_accuracy").size() == 1);
  }
  CHECK_THAT(read_text(out / "fig4b.svg"), Catch::StartsWith("<svg") && Contains("Baseline VGG16"));
}

TEST_CASE("flexnn reproduce fig4a names HMAX while the registry lacks it, and runs once it has it",
          "[cli][presets]") {
  unsetenv("FLEXNN_PRESETS_DIR");
  TempDir tmp("fig4a");
  const std::string fmnist = flexnn::testing::write_fmnist(tmp.path() / "fmnist", 40, 20);
  const std::string command = fmt::format(
      "reproduce fig4a --quick --epochs 1 --seeds 1 --per-class 2 --test-per-class 2 --batch-size 10 "
      "--data-dir {} --out {} --threads 2",
      fmnist, tmp.str("fig4a"));
  const std::vector<std::string> models = flexnn::models::model_names();
  if (std::find(models.begin(), models.end(), "hmax") == models.end()) {
    const CliResult r = run_cli(command);
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Contains("error:") && Contains("fig4a") && Contains("unknown model 'hmax'"));
    CHECK_FALSE(fs::exists(tmp.path() / "fig4a" / "baseline"));
  } else {
    run_ok(command);
    const Json report = read_json(tmp.path() / "fig4a" / "fig4a.json");
    REQUIRE(report.at("variants").size() == 3);
    CHECK(report["variants"][2].at("model").at("variant") == "flexible");
  }
}
