// A preset's evaluation: each network's attack report (reused when unchanged), the statistics per
// variant, the table, the JSON and the chart.
#include "tools/cli/preset_evaluation.hpp"

#include "attacks/suite.hpp"
#include "attacks/worst_case.hpp"
#include "engine/error.hpp"
#include "engine/generator.hpp"
#include "engine/io/atomic_file.hpp"
#include "models/registry.hpp"
#include "tools/cli/attack_chart.hpp"
#include "tools/cli/json_file.hpp"
#include "tools/cli/svg_chart.hpp"
#include "tools/cli/training_data.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <set>

namespace flexnn::cli {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

int64_t whole_number(const Json& value, const char* key, const std::string& where, int64_t min, int64_t max) {
  FLEXNN_CHECK(value.is_number_integer() && !(value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(max)) &&
                   value.get<int64_t>() >= min && value.get<int64_t>() <= max,
               "{}: \"{}\" must be an integer from {} to {}, found {}", where, key, min, max, value.dump());
  return value.get<int64_t>();
}

// What identifies a trained network for the reuse of its report: its training options (from
// summary.json) and its weights file's size and time.
Json network_record(const fs::path& run) {
  const Json summary = read_json_file(run / "summary.json");
  FLEXNN_CHECK(summary.is_object() && fs::exists(run / "model.safetensors"),
               "evaluation: the run {} has no readable summary.json and model.safetensors (is it trained?)",
               run.string());
  const fs::path weights = run / "model.safetensors";
  return {{"run", run.string()},
          {"training", summary.value("training", Json())},
          {"weights_bytes", fs::file_size(weights)},
          {"weights_time", fs::last_write_time(weights).time_since_epoch().count()}};
}

// One network's report: reused from <run>/NAME-attacks.json when it was made with the same
// settings (the evaluation, the network, the source, the test images), else computed and saved.
// The masks of a random-mask network come from a generator of its own, seeded by the evaluation's
// seed, so the report does not depend on what ran before it.
Json network_report(const PresetEvaluation& evaluation, const fs::path& run, nn::Module* source,
                    const Json& source_record, const datasets::ImageSource& test, const EvaluationContext& context) {
  const fs::path cache = run / (context.name + "-attacks.json");
  const Json settings{{"evaluation", to_json(evaluation)},
                      {"network", network_record(run)},
                      {"source", source_record},
                      {"test", {{"data", context.data}, {"data_dir", context.data_dir.string()}, {"examples", test.size()}}}};
  if (const Json cached = read_json_file(cache); cached.is_object() && cached.value("settings", Json()) == settings)
    return cached.at("report");

  Generator masks(evaluation.seed);
  const models::LoadedModel loaded = models::load_model(run / "model.safetensors", masks);
  loaded.model->to(context.device);
  check_data_fits(test, loaded.config, context.data);
  std::vector<attacks::AttackSpec> specs;
  for (const AttackPlan& plan : evaluation.plans) {
    const std::vector<attacks::AttackSpec> some = plan_specs(plan, *loaded.model, loaded.config, source);
    specs.insert(specs.end(), some.begin(), some.end());
  }
  const attacks::AttackReport report = attacks::run_attacks(
      *loaded.model, test, specs,
      {.batch_size = context.batch_size, .repeats = evaluation.repeats, .seed = evaluation.seed,
       .workers = context.workers, .on_batch = {}});
  const Json j = attacks::report_json(report);
  write_text_atomically(cache, Json{{"settings", settings}, {"report", j}}.dump(2) + "\n", "attack report");
  return j;
}

}  // namespace

PresetEvaluation evaluation_from_json(const Json& json, const std::string& where) {
  static const std::set<std::string> known{"attacks", "repeats", "seed", "per_class", "source"};
  FLEXNN_CHECK(json.is_object(), "{} must be a JSON object, found {}", where, json.dump());
  for (const auto& [key, value] : json.items())
    FLEXNN_CHECK(known.contains(key), "{}: unknown key \"{}\" (known: {})", where, key, fmt::join(known, ", "));
  FLEXNN_CHECK(json.contains("attacks") && json["attacks"].is_array() && !json["attacks"].empty(),
               "{}: \"attacks\" must be a non-empty array of attack plans", where);
  PresetEvaluation e;
  for (size_t i = 0; i < json["attacks"].size(); ++i)
    e.plans.push_back(plan_from_json(json["attacks"][i], fmt::format("{}, attack plan {}", where, i + 1)));
  check_distinct(e.plans, where);
  if (json.contains("repeats")) {
    e.repeats = static_cast<int>(whole_number(json["repeats"], "repeats", where, 1, 100000));
  }
  if (json.contains("seed")) e.seed = static_cast<uint64_t>(whole_number(json["seed"], "seed", where, 0, std::numeric_limits<int64_t>::max()));
  if (json.contains("per_class")) e.per_class = whole_number(json["per_class"], "per_class", where, 0, 1000000);
  if (json.contains("source")) {
    FLEXNN_CHECK(json["source"].is_string(), "{}: \"source\" must be a variant's name, found {}", where,
                 json["source"].dump());
    e.source = json["source"].get<std::string>();
  }
  const bool transfer = std::any_of(e.plans.begin(), e.plans.end(), plan_needs_source);
  FLEXNN_CHECK(!transfer || !e.source.empty(),
               "{}: a plan runs the transfer attack, so \"source\" must name the variant to craft it on", where);
  return e;
}

Json to_json(const PresetEvaluation& e) {
  Json plans = Json::array();
  for (const AttackPlan& plan : e.plans) plans.push_back(to_json(plan));
  return {{"attacks", plans}, {"repeats", e.repeats}, {"seed", e.seed}, {"per_class", e.per_class},
          {"source", e.source}};
}

Json run_evaluation(const PresetEvaluation& evaluation, const std::vector<TrainedVariant>& targets,
                    const fs::path& source_run, const datasets::ImageSource& full_test,
                    const EvaluationContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const std::optional<datasets::ImageDatasetSource> subset =
      balanced_subset(full_test, evaluation.per_class, 0, context.data, "the evaluation's per_class");
  const datasets::ImageSource& test = subset ? static_cast<const datasets::ImageSource&>(*subset) : full_test;
  std::unique_ptr<models::LoadedModel> source;
  Json source_record;  // what the transfer attacks were crafted on, for the reuse check
  Generator source_generator(evaluation.seed);  // for a random-mask source; outlives `source`
  if (!source_run.empty()) {
    source_record = network_record(source_run);
    source = std::make_unique<models::LoadedModel>(
        models::load_model(source_run / "model.safetensors", source_generator));
    source->model->to(context.device);
    check_data_fits(test, source->config, context.data);
  }
  fmt::print("\nattacking {} test images per network ({} repeat(s) per attack)\n", test.size(), evaluation.repeats);
  std::fflush(stdout);

  std::vector<Measure> rows;  // the union of every network's measures, first seen first (worst cases last)
  std::vector<MeasuredSeries> cells;  // per variant: key → mean ± SEM
  Json variants = Json::array();
  for (const TrainedVariant& target : targets) {
    std::map<std::string, std::vector<MeanSem>> per_network;
    Json networks = Json::array(), warnings = Json::array();
    for (const fs::path& run : target.runs) {
      const auto t0 = std::chrono::steady_clock::now();
      const Json report = network_report(evaluation, run, source ? source->model.get() : nullptr, source_record,
                                         test, context);
      for (const auto& [measure, value] : report_measures(report)) {
        add_measure(rows, measure);
        per_network[measure.key].push_back(value);
      }
      for (const Json& w : report.at("worst_case"))
        for (const Json& warning : w.at("warnings")) {
          warnings.push_back({{"run", run.string()}, {"eps", w.at("eps")}, {"kind", warning.at("kind")},
                              {"message", warning.at("message")}});
          fmt::print("  warning [{}] {} eps {:g}: {}\n", warning.at("kind").get<std::string>(), run.string(),
                     w.at("eps").get<float>(), warning.at("message").get<std::string>());
        }
      fmt::print("  {}: clean {:.2f}%, worst case {} ({:.0f} s)\n", run.string(),
                 report.at("clean_accuracy").get<double>(),
                 fmt::join(report.at("worst_case") | std::views::transform([](const Json& w) {
                             return fmt::format("{:.2f}% at {:g}", w.at("accuracy").get<double>(),
                                                w.at("eps").get<float>());
                           }),
                           ", "),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(stdout);
      networks.push_back({{"run", run.string()}, {"report", report}});
    }
    MeasuredSeries& variant_cells = cells.emplace_back(MeasuredSeries{target.label, {}});
    Json summary = Json::object();
    for (const auto& [key, values] : per_network) {
      std::vector<double> means;
      for (const MeanSem& v : values) means.push_back(v.mean);
      const MeanSem m = values.size() > 1 ? mean_sem(means) : values.front();
      variant_cells.values[key] = m;
      summary[key] = {{"mean", m.mean}, {"sem", std::isnan(m.sem) ? Json() : Json(m.sem)}};
    }
    variants.push_back({{"variant", target.variant},
                        {"label", target.label},
                        {"networks", networks},
                        {"summary", summary},
                        {"warnings", warnings}});
  }

  fmt::print("\n{:<26}", "accuracy % (test)");
  for (const TrainedVariant& t : targets) fmt::print("{:>18}", t.variant);
  fmt::print("\n");
  for (const Measure& row : rows) {
    fmt::print("{:<26}", row.key);
    for (const auto& variant_cells : cells) {
      const auto it = variant_cells.values.find(row.key);
      fmt::print("{:>18}", it == variant_cells.values.end() ? "-" : format_mean_sem(it->second));
    }
    fmt::print("\n");
  }
  fmt::print("mean ± SEM over networks (one network: over repeats); worst case: per example, correct clean and under "
             "every attack at that eps\n");

  const fs::path svg_path = context.out / (context.name + "-attacks.svg");
  write_svg_file(svg_path, attack_chart_svg(fmt::format("{}: accuracy under attack ({} test images)", context.title,
                                                        test.size()),
                                            rows, cells));

  Json row_keys = Json::array();
  for (const Measure& row : rows) row_keys.push_back(row.key);
  const Json out{{"experiment", context.name},
                 {"title", context.title},
                 {"data", context.data},
                 {"examples", test.size()},
                 {"evaluation", to_json(evaluation)},
                 {"source", source_record},
                 {"measures", row_keys},
                 {"variants", variants},
                 {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  const fs::path json_path = context.out / (context.name + "-attacks.json");
  write_text_atomically(json_path, out.dump(2) + "\n", "JSON");
  fmt::print("wrote {} and {}\n", json_path.string(), svg_path.string());
  return out;
}

}  // namespace flexnn::cli
