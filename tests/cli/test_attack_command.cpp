// `flexnn attack` end to end, as a real process on a synthetic Fashion-MNIST in the real IDX format:
// its accuracies are the attack library's for the same checkpoint, plan and seed, exactly; repeats
// give mean ± SEM; the worst case is per ε and below every attack at that ε; the suite adapts to
// the model (EOT for a random mask, BPDA for threshold gates) and warns of randomisation; transfer
// needs --source; bad flags and impossible plans fail with a message that names them.
#include <catch2/catch.hpp>

#include "attacks/suite.hpp"
#include "attacks/worst_case.hpp"
#include "cli/cli_files.hpp"
#include "cli/run_cli.hpp"
#include "datasets/catalog.hpp"
#include "models/registry.hpp"
#include "temp_dir.hpp"
#include "tools/cli/attack_plan.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace fs = std::filesystem;
using flexnn::testing::count_occurrences;
using Catch::Contains;
using flexnn::testing::CliResult;
using flexnn::testing::read_json;
using flexnn::testing::run_cli;
using flexnn::testing::run_ok;
using flexnn::testing::TempDir;
using Json = nlohmann::json;

namespace {

const std::string& fmnist_dir() {
  static const TempDir dir("attack_fmnist");
  static const std::string path = flexnn::testing::write_fmnist(dir.path(), 300, 60);
  return path;
}

// A fmnist-small checkpoint with flexible layers in `flex` mode, trained for one epoch (cached).
std::string checkpoint(const std::string& flex) {
  static const TempDir runs("attack_runs");
  const fs::path out = runs.path() / flex;
  if (!fs::exists(out / "model.safetensors"))
    run_ok(fmt::format("train --epochs 2 --seed 5 --flex {} --lr 0.01 --batch-size 20 --out {} --data-dir {} "
                       "--threads 2",
                       flex, out.string(), fmnist_dir()));
  return (out / "model.safetensors").string();
}

std::string attack_command(const std::string& checkpoint_path, const std::string& rest) {
  return fmt::format("attack --checkpoint {} --data-dir {} --threads 2 --batch-size 16 {}", checkpoint_path,
                     fmnist_dir(), rest);
}

const Json& summary(const Json& report, const std::string& name, double eps) {
  for (const Json& a : report.at("attacks"))
    if (a.at("name") == name && a.at("eps").get<float>() == static_cast<float>(eps)) return a;
  FAIL("no summary for " << name << " at " << eps << " in " << report.at("attacks").dump());
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("flexnn attack reports the library's accuracies, mean ± SEM over repeats, and the worst case per eps",
          "[cli][attack]") {
  TempDir tmp("attack");
  const std::string model = checkpoint("standard");
  const fs::path json = tmp.path() / "attack.json", svg = tmp.path() / "attack.svg";
  const CliResult r = run_ok(attack_command(
      model, fmt::format("--attack fgsm,pgd,square --eps 0,0.3 --steps 5 --queries 40 --repeats 2 --seed 7 --json {} "
                         "--per-example --svg {}",
                         json.string(), svg.string())));
  CHECK_THAT(r.output, Contains("fmnist test, 60 images") && Contains("worst case") && Contains("pgd") &&
                           Contains("square") && Contains("2 run(s) per attack"));
  const Json report = read_json(json);
  CHECK(report.at("n") == 60);
  CHECK(report.at("runs").size() == 3 * 2 * 2);  // attacks x eps x repeats
  CHECK(report.at("plan").at("attack") == Json({"fgsm", "pgd", "square"}));
  const double clean = report.at("clean_accuracy");
  CHECK(clean > 50);  // the network learned the bands
  // ε = 0 changes nothing.
  for (const char* name : {"fgsm", "pgd", "square"}) CHECK(summary(report, name, 0).at("mean").get<double>() == clean);
  // Repeats: PGD's random start differs between them; the SEM is that of the two runs.
  const Json& pgd = summary(report, "pgd", 0.3);
  REQUIRE(pgd.at("runs").size() == 2);
  const double a = pgd["runs"][0], b = pgd["runs"][1];
  CHECK(pgd.at("mean").get<double>() == Approx((a + b) / 2));
  CHECK(pgd.at("sem").get<double>() == Approx(std::abs(a - b) / 2).margin(1e-12));
  CHECK(pgd.at("mean").get<double>() < clean);
  // The worst case per ε: below every run at that ε, and the per-example verdicts agree with it.
  const Json& worst = report.at("worst_case");
  REQUIRE(worst.size() == 2);
  CHECK(worst[0].at("accuracy").get<double>() == clean);
  const double worst_at_03 = worst[1].at("accuracy");
  for (const Json& run : report.at("runs"))
    if (run.at("eps").get<float>() == 0.3f) CHECK(worst_at_03 <= run.at("accuracy").get<double>());
  const Json& robust = report.at("per_example").at("worst_case")[1].at("robust");
  REQUIRE(robust.size() == 60);
  CHECK(100.0 * static_cast<double>(std::count(robust.begin(), robust.end(), 1)) / 60 == Approx(worst_at_03));
  // The chart: accuracy against ε (0 and 0.3), a line per attack, error bars for the repeats' SEM.
  const std::string chart = flexnn::testing::read_text(svg);
  CHECK_THAT(chart, Contains("fmnist-small, pgd") && Contains("fmnist-small, square") && Contains("eps"));
  CHECK(count_occurrences(chart, "<circle class=\"point\"") == 3 * 2);
  CHECK(count_occurrences(chart, "<path class=\"error-bar\"") >= 1);  // PGD's two repeats differ at ε = 0.3

  // The same plan through the library on the same checkpoint and data gives the same numbers.
  const flexnn::models::LoadedModel loaded = flexnn::models::load_model(model);
  const flexnn::datasets::ImageDataset test = flexnn::datasets::load_dataset("fmnist", fmnist_dir(), "test");
  flexnn::cli::AttackPlan plan;
  plan.attacks = {"fgsm", "pgd", "square"};
  plan.eps = {0.0f, 0.3f};
  plan.steps = 5;
  plan.square_queries = 40;
  const auto specs = flexnn::cli::plan_specs(plan, *loaded.model, loaded.config, nullptr);
  const flexnn::attacks::AttackReport direct =
      flexnn::attacks::run_attacks(*loaded.model, test, specs, {.batch_size = 16, .repeats = 2, .seed = 7});
  REQUIRE(direct.runs.size() == report.at("runs").size());
  for (size_t i = 0; i < direct.runs.size(); ++i) {
    INFO("run " << i << ": " << direct.runs[i].name);
    CHECK(report["runs"][i].at("name") == direct.runs[i].name);
    CHECK(report["runs"][i].at("accuracy").get<double>() == direct.runs[i].accuracy);
  }
}

TEST_CASE("flexnn attack --attack suite adapts to the model and warns that a random mask is random",
          "[cli][attack]") {
  TempDir tmp("attack_suite");
  const fs::path json = tmp.path() / "suite.json";
  run_ok(attack_command(checkpoint("random"),
                        fmt::format("--attack suite --eps 0.1 --steps 3 --apgd-iterations 4 --queries 20 "
                                    "--eot-samples 2 --per-class 2 --json {}",
                                    json.string())));
  const Json report = read_json(json);
  CHECK(report.at("n") == 20);  // 2 per class
  std::vector<std::string> names;
  for (const Json& a : report.at("attacks")) names.push_back(a.at("name"));
  CHECK(names == std::vector<std::string>{"pgd", "eot-pgd", "eot-apgd-ce", "eot-apgd-dlr", "square"});
  CHECK(report.at("randomized_model") == true);
  const Json& warnings = report.at("worst_case")[0].at("warnings");
  CHECK(std::any_of(warnings.begin(), warnings.end(),
                    [](const Json& w) { return w.at("kind") == "randomized-model"; }));

  // A threshold-gated model gets BPDA and a transfer attack from --source; no EOT.
  const fs::path gated = tmp.path() / "gated.json";
  run_ok(attack_command(checkpoint("standard"),
                        fmt::format("--attack suite --eps 0.1 --steps 3 --apgd-iterations 4 --queries 20 --per-class 1 "
                                    "--source {} --json {}",
                                    checkpoint("none"), gated.string())));
  const Json g = read_json(gated);
  names.clear();
  for (const Json& a : g.at("attacks")) names.push_back(a.at("name"));
  CHECK(names == std::vector<std::string>{"pgd", "bpda-pgd", "apgd-ce", "apgd-dlr", "square", "transfer"});
  CHECK(g.at("attacks").back().at("family") == "transfer");
  CHECK(g.at("source").at("model").at("flex") == "none");
}

TEST_CASE("flexnn attack on a random-mask model depends on --seed alone, not on the other models loaded",
          "[cli][attack]") {
  TempDir tmp("attack_seed");
  const auto pgd_runs = [&](const std::string& extra, const std::string& name) {
    const fs::path json = tmp.path() / name;
    run_ok(fmt::format("attack --checkpoint {} --data-dir {} --threads 2 --batch-size 100 --per-class 2 --eps 0.3 "
                       "--steps 3 --repeats 3 --json {} {}",
                       checkpoint("random"), fmnist_dir(), json.string(), extra));
    std::vector<double> accuracies;
    const Json report = read_json(json);
    for (const Json& run : report.at("runs"))
      if (run.at("name") == "pgd") accuracies.push_back(run.at("accuracy"));
    REQUIRE(accuracies.size() == 3);
    return accuracies;
  };
  const std::vector<double> alone = pgd_runs("--attack pgd --seed 4", "alone.json");
  CHECK(pgd_runs("--attack pgd,transfer --seed 4 --source " + checkpoint("none"), "with_source.json") == alone);
  CHECK(pgd_runs("--attack pgd --seed 5", "other_seed.json") != alone);  // new masks, new starts
}

TEST_CASE("flexnn attack names what is wrong with its flags", "[cli][attack]") {
  const std::string model = checkpoint("standard");
  const auto fails = [&](const std::string& rest, int status, const std::vector<std::string>& words) {
    const CliResult r = run_cli(attack_command(model, rest));
    INFO(rest << "\n" << r.output);
    CHECK(r.status == status);
    for (const std::string& word : words) CHECK_THAT(r.output, Contains(word));
  };
  fails("--attack transfer --eps 0.1", 1, {"error:", "--source"});
  fails("--attack pgd --eps 0.1 --source " + model, 1, {"error:", "--source", "pgd"});
  fails("--attack square --eps 0.1 --norm l2", 1, {"error:", "L∞", "l2"});
  fails("--attack nope --eps 0.1", 2, {"--attack", "nope"});
  fails("--attack pgd --eps -0.1", 2, {"--eps"});
  fails("--attack pgd", 2, {"--eps"});
  fails("--attack pgd --eps 0.1 --step-size 0", 2, {"--step-size"});
  fails("--attack pgd --eps 0.1 --per-class 2 --data folder", 1, {"error:", "--per-class", "streams"});
  fails("--attack pgd,suite --eps 0.1", 1, {"error:", "'pgd'", "suite", "once per eps"});
  fails("--attack pgd,pgd --eps 0.1", 1, {"error:", "'pgd'", "once per eps"});
  fails("--attack pgd --eps 0.1 --per-example", 2, {"--per-example", "--json"});
  const CliResult missing = run_cli("attack --checkpoint /no/such/model.safetensors --attack pgd --eps 0.1");
  CHECK(missing.status == 2);
  CHECK_THAT(missing.output, Contains("/no/such/model.safetensors"));
}
