// The evaluation half of `flexnn reproduce` presets, run as real processes on synthetic data sets
// in the real formats: every trained network is attacked (the source variant trained once and
// only crafting transfer attacks), a variant's accuracy is the mean over its networks with the SEM
// over them, the reports are reused while nothing changed, the chart plots an ε sweep; a bad
// evaluation is an error before anything trains; and the shipped robustness-audit, table3 and
// fig4d presets run with --quick and small overrides.
#include <catch2/catch.hpp>

#include "cli/cli_files.hpp"
#include "cli/run_cli.hpp"
#include "temp_dir.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using flexnn::testing::count_occurrences;
using Catch::Contains;
using flexnn::testing::CliResult;
using flexnn::testing::read_json;
using flexnn::testing::read_text;
using flexnn::testing::run_cli;
using flexnn::testing::run_ok;
using flexnn::testing::shared_cifar10_dir;
using flexnn::testing::use_preset;
using flexnn::testing::TempDir;
using Json = nlohmann::json;

namespace {

const std::string& fmnist_dir() {
  static const TempDir dir("preset_eval_fmnist");
  static const std::string path = flexnn::testing::write_fmnist(dir.path(), 200, 60);
  return path;
}

// Two fmnist-small variants attacked by an FGSM sweep, PGD and a transfer attack from a third.
Json attack_preset() {
  const Json fmnist = {{"model", "fmnist-small"}, {"flex", "none"}};
  return {{"title", "Tiny attack preset"},
          {"data", "fmnist"},
          {"epochs", 1},
          {"seeds", 2},
          {"training", {{"batch_size", 20}, {"lr", 0.01}}},
          {"runs",
           {{{"variant", "src"}, {"label", "Source"}, {"model", fmnist}, {"training", {{"lr", 0.02}}}},
            {{"variant", "base"}, {"label", "Baseline"}, {"model", fmnist}},
            {{"variant", "flex"}, {"label", "Flexible"}, {"model", {{"model", "fmnist-small"}, {"flex", "standard"}}}}}},
          {"evaluation",
           {{"attacks",
             {{{"attack", "fgsm"}, {"eps", {0.2, 0.4}}},
              {{"attack", {"pgd", "transfer"}}, {"eps", 0.3}, {"steps", 3}}}},
            {"repeats", 2},
            {"per_class", 2},
            {"source", "src"}}}};
}

const Json& measure(const Json& report, const std::string& name, double eps) {
  for (const Json& a : report.at("attacks"))
    if (a.at("name") == name && a.at("eps").get<float>() == static_cast<float>(eps)) return a;
  FAIL("no " << name << " at " << eps);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a preset's evaluation attacks every network, averages over seeds, and reuses unchanged reports",
          "[cli][presets][attack]") {
  TempDir tmp("preset_eval");
  use_preset(tmp.path() / "presets", "tiny", attack_preset());
  const fs::path out = tmp.path() / "out";
  const std::string command = fmt::format("reproduce tiny --data-dir {} --out {} --threads 2", fmnist_dir(), out.string());
  const CliResult first = run_ok(command);
  CHECK_THAT(first.output, Contains("attacking 20 test images per network") && Contains("worst case @ 0.3") &&
                               Contains("transfer @ 0.3"));
  // The source is trained once and not attacked.
  CHECK(fs::exists(out / "src" / "seed1" / "model.safetensors"));
  CHECK_FALSE(fs::exists(out / "src" / "seed2"));
  CHECK_FALSE(fs::exists(out / "src" / "seed1" / "tiny-attacks.json"));

  const Json result = read_json(out / "tiny-attacks.json");
  CHECK(read_json(out / "tiny.json").at("evaluation") == result);
  CHECK(result.at("examples") == 20);
  CHECK(result.at("source").at("run") == (out / "src" / "seed1").string());
  CHECK(result.at("measures") == Json({"clean", "fgsm @ 0.2", "fgsm @ 0.4", "pgd @ 0.3", "transfer @ 0.3",
                                       "worst case @ 0.2", "worst case @ 0.4", "worst case @ 0.3"}));
  const Json& variants = result.at("variants");
  REQUIRE(variants.size() == 2);
  CHECK(variants[0].at("variant") == "base");
  CHECK(variants[1].at("variant") == "flex");
  for (const Json& v : variants) {
    INFO(v.at("variant"));
    REQUIRE(v.at("networks").size() == 2);
    const Json& a = v["networks"][0].at("report");
    const Json& b = v["networks"][1].at("report");
    CHECK(a.at("n") == 20);
    CHECK(measure(a, "transfer", 0.3).at("family") == "transfer");
    CHECK(measure(a, "pgd", 0.3).at("repeats") == 2);
    // A variant's value: the mean over its two networks, the SEM over them.
    for (const auto& [key, name, eps] : {std::tuple{"pgd @ 0.3", "pgd", 0.3}, {"fgsm @ 0.4", "fgsm", 0.4}}) {
      const double x = measure(a, name, eps).at("mean"), y = measure(b, name, eps).at("mean");
      CHECK(v.at("summary").at(key).at("mean").get<double>() == Approx((x + y) / 2));
      CHECK(v.at("summary").at(key).at("sem").get<double>() == Approx(std::abs(x - y) / 2).margin(1e-12));
    }
    const double clean = (a.at("clean_accuracy").get<double>() + b.at("clean_accuracy").get<double>()) / 2;
    CHECK(v.at("summary").at("clean").at("mean").get<double>() == Approx(clean));
    CHECK(fs::exists(out / v.at("variant").get<std::string>() / "seed2" / "tiny-attacks.json"));
  }
  // FGSM sweeps ε, so the chart is accuracy against ε (0: clean, 0.2, 0.4), a line per variant.
  const std::string svg = read_text(out / "tiny-attacks.svg");
  CHECK_THAT(svg, Contains("Baseline") && Contains("Flexible") && Contains("eps"));
  CHECK(count_occurrences(svg, "<g class=\"series\"") == 2);
  CHECK(count_occurrences(svg, "<circle class=\"point\"") == 6);

  // Again: every report is reused as it is.
  const fs::path cache = out / "base" / "seed1" / "tiny-attacks.json";
  const auto written = fs::last_write_time(cache);
  run_ok(command);
  CHECK(fs::last_write_time(cache) == written);
  CHECK(read_json(out / "tiny-attacks.json").at("variants") == variants);
  // Other settings make new reports.
  run_ok(command + " --repeats 1 --variants flex");
  const Json once = read_json(out / "tiny-attacks.json");
  REQUIRE(once.at("variants").size() == 1);
  CHECK(measure(once["variants"][0]["networks"][0].at("report"), "pgd", 0.3).at("repeats") == 1);
  CHECK(fs::last_write_time(cache) == written);  // base was not asked for
}

TEST_CASE("a preset's --quick replaces its evaluation's fields one by one", "[cli][presets][attack]") {
  TempDir tmp("preset_eval_quick");
  Json preset = attack_preset();
  preset["quick"] = {{"seeds", 1}, {"evaluation", {{"repeats", 1}, {"per_class", 1}}}};
  use_preset(tmp.path() / "presets", "tiny", preset);
  run_ok(fmt::format("reproduce tiny --quick --variants base --data-dir {} --out {} --threads 2", fmnist_dir(),
                     tmp.str("out")));
  const Json result = read_json(tmp.path() / "out" / "tiny-attacks.json");
  CHECK(result.at("examples") == 10);                                  // quick's per_class
  CHECK(result.at("evaluation").at("repeats") == 1);                   // quick's repeats
  CHECK(result.at("evaluation").at("source") == "src");                // the preset's, kept
  CHECK(result.at("evaluation").at("attacks").size() == 2);
  CHECK(measure(result["variants"][0]["networks"][0].at("report"), "pgd", 0.3).at("repeats") == 1);
}

TEST_CASE("a bad preset evaluation is an error naming it, before anything trains", "[cli][presets][attack]") {
  TempDir tmp("preset_eval_bad");
  const fs::path presets = tmp.path() / "presets";
  Json no_source = attack_preset();
  no_source["evaluation"].erase("source");
  use_preset(presets, "nosource", no_source);
  Json unknown = attack_preset();
  unknown["evaluation"]["repeat"] = 3;
  use_preset(presets, "unknown", unknown);
  Json not_variant = attack_preset();
  not_variant["evaluation"]["source"] = "surrogate";
  use_preset(presets, "notvariant", not_variant);
  Json bad_attack = attack_preset();
  bad_attack["evaluation"]["attacks"][1]["attack"] = {"pgd", "cw"};
  use_preset(presets, "badattack", bad_attack);
  Json no_evaluation = attack_preset();
  no_evaluation.erase("evaluation");
  use_preset(presets, "noevaluation", no_evaluation);
  Json twice = attack_preset();
  twice["evaluation"]["attacks"].push_back({{"attack", "suite"}, {"eps", 0.3}});
  use_preset(presets, "twice", twice);
  Json mixed = attack_preset();
  mixed["evaluation"]["attacks"].push_back({{"attack", "fgsm"}, {"eps", 0.3}, {"norm", "l2"}});
  use_preset(presets, "mixed", mixed);
  Json bad_quick = attack_preset();
  bad_quick["quick"] = {{"evaluation", 3}};
  use_preset(presets, "badquick", bad_quick);
  Json streamed = attack_preset();
  streamed["data"] = "folder";
  use_preset(presets, "streamed", streamed);

  const auto expect_error = [&](const std::string& name, const std::vector<std::string>& words,
                                const std::string& extra = "") {
    const CliResult r = run_cli(fmt::format("reproduce {} --data-dir {} --out {} {}", name, fmnist_dir(),
                                            tmp.str(name), extra));
    INFO(r.output);
    CHECK(r.status == 1);
    for (const std::string& word : words) CHECK_THAT(r.output, Contains(word));
    CHECK_FALSE(fs::exists(tmp.path() / name / "base"));  // nothing trained
  };
  expect_error("nosource", {"error:", "transfer", "\"source\""});
  expect_error("unknown", {"error:", "\"repeat\""});
  expect_error("notvariant", {"error:", "'surrogate'"});
  expect_error("badattack", {"error:", "'cw'", "attack plan 2"});
  expect_error("noevaluation", {"error:", "--repeats"}, "--repeats 3");
  expect_error("twice", {"error:", "'pgd'", "'suite'", "plans 2 and 3"});
  expect_error("mixed", {"error:", "plans 2 and 3", "different threat models"});
  expect_error("badquick", {"error:", "\"quick\"", "must be a JSON object"});
  expect_error("streamed", {"error:", "per_class", "folder"});
}

TEST_CASE("flexnn reproduce robustness-audit --quick attacks every Table 2 variant with the adaptive suite",
          "[cli][presets][attack]") {
  unsetenv("FLEXNN_PRESETS_DIR");
  TempDir tmp("audit");
  const fs::path out = tmp.path() / "audit";
  const CliResult r = run_ok(fmt::format("reproduce robustness-audit --quick --per-class 5 --attack-per-class 1 "
                                         "--batch-size 10 --data-dir {} --out {} --threads 2",
                                         fmnist_dir(), out.string()));
  CHECK_THAT(r.output, Contains("fgsm @ 0.1") && Contains("pgd @ 0.1") && Contains("worst case @ 0.1"));
  const Json result = read_json(out / "robustness-audit-attacks.json");
  std::vector<std::string> variants;
  for (const Json& v : result.at("variants")) variants.push_back(v.at("variant"));
  CHECK(variants == std::vector<std::string>{"none", "uniform", "standard", "reverse", "random"});
  for (const Json& v : result.at("variants")) {
    const std::string variant = v.at("variant");
    INFO(variant);
    const Json& summary = v.at("summary");
    CHECK(summary.contains("worst case @ 0.1"));
    CHECK(summary.contains("square @ 0.1"));
    CHECK(summary.contains("bpda-pgd @ 0.1") == (variant != "none" && variant != "random"));
    CHECK(summary.contains("eot-apgd-ce @ 0.1") == (variant == "random"));
    CHECK(summary.at("worst case @ 0.1").at("mean").get<double>() <= summary.at("fgsm @ 0.1").at("mean").get<double>());
  }
}

TEST_CASE("flexnn reproduce table3 and fig4d --quick attack the paper's VGG16 networks", "[cli][presets][attack]") {
  unsetenv("FLEXNN_PRESETS_DIR");
  TempDir tmp("table3");
  const std::string small = fmt::format("--quick --per-class 2 --test-per-class 1 --batch-size 10 --attack-per-class 1 "
                                        "--repeats 1 --data-dir {} --threads 2",
                                        shared_cifar10_dir());
  run_ok(fmt::format("reproduce table3 {} --out {}", small, tmp.str("table3")));
  const Json table3 = read_json(tmp.path() / "table3" / "table3-attacks.json");
  CHECK(table3.at("measures") == Json({"clean", "pgd @ 0.031", "transfer @ 0.031", "worst case @ 0.031"}));
  REQUIRE(table3.at("variants").size() == 2);  // the surrogate only crafts the black-box attack
  CHECK(table3.at("source").at("run").get<std::string>().find("surrogate") != std::string::npos);
  // No ε sweep: bars, one per (measure, variant).
  CHECK(count_occurrences(read_text(tmp.path() / "table3" / "table3-attacks.svg"), "<rect class=\"bar\"") == 4 * 2);

  run_ok(fmt::format("reproduce fig4d {} --variants baseline,random --out {}", small, tmp.str("fig4d")));
  const Json fig4d = read_json(tmp.path() / "fig4d" / "fig4d-attacks.json");
  CHECK(fig4d.at("evaluation").at("attacks")[0].at("eps_space") == "normalized");
  CHECK(fig4d.at("measures").size() == 1 + 13 + 13);  // clean, FGSM and the worst case at each ε
  const std::string svg = read_text(tmp.path() / "fig4d" / "fig4d-attacks.svg");
  CHECK(count_occurrences(svg, "<g class=\"series\"") == 2);
  CHECK(count_occurrences(svg, "<circle class=\"point\"") == 2 * 14);  // ε = 0 (clean) and the 13 of the sweep
}

TEST_CASE("robustness-audit reuses the networks reproduce table2 trained, and attacks them", "[cli][presets][attack]") {
  unsetenv("FLEXNN_PRESETS_DIR");
  TempDir tmp("audit_reuse");
  const fs::path out = tmp.path() / "table2";
  run_ok(fmt::format("reproduce table2 --epochs 2 --seeds 1 --variants none,standard --data-dir {} --out {} --threads 2",
                     fmnist_dir(), out.string()));
  const fs::path model = out / "standard" / "seed1" / "model.safetensors";
  const auto trained = fs::last_write_time(model);
  const CliResult r = run_ok(fmt::format("reproduce robustness-audit --epochs 2 --seeds 1 --variants none,standard "
                                         "--attack-per-class 1 --data-dir {} --out {} --threads 2",
                                         fmnist_dir(), out.string()));
  CHECK(fs::last_write_time(model) == trained);  // reused, though table2 named its model by a partial config
  CHECK_THAT(r.output, Contains("worst case @ 0.1"));
  const Json report = read_json(out / "robustness-audit.json");
  // table2 tests only after the last epoch: the curve has no point for the first.
  const Json summary = read_json(out / "standard" / "seed1" / "summary.json");
  const Json& curve = report.at("variants")[1].at("test_accuracy")[0];
  REQUIRE(curve.size() == 2);
  CHECK(curve[0].is_null());
  CHECK(curve[1] == summary.at("test_accuracy"));
  CHECK(report.at("evaluation").at("variants").size() == 2);
}
