// Presets: reading and checking the JSON files, the settings each run gets (preset, --quick, the
// command line's overrides, in that order), the runs, the statistics over seeds, and the report
// (JSON and an SVG line chart).
#include "tools/cli/presets.hpp"

#include "datasets/catalog.hpp"
#include "datasets/image_source.hpp"
#include "engine/error.hpp"
#include "engine/io/atomic_file.hpp"
#include "tools/cli/mean_sem.hpp"
#include "tools/cli/preset_evaluation.hpp"
#include "tools/cli/progress.hpp"
#include "tools/cli/svg_chart.hpp"
#include "tools/cli/training.hpp"
#include "tools/cli/training_data.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <ranges>
#include <set>
#include <tuple>

namespace flexnn::cli {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Checks that `object` (at `where` in `file`) is a JSON object whose keys are all in `known`.
void check_keys(const Json& object, const std::set<std::string>& known, const fs::path& file,
                const std::string& where) {
  FLEXNN_CHECK(object.is_object(), "preset {}: {} must be a JSON object, found {}", file.string(), where,
               object.dump());
  for (const auto& [key, value] : object.items())
    FLEXNN_CHECK(known.contains(key), "preset {}: unknown key \"{}\" in {} (known: {})", file.string(), key, where,
                 fmt::join(known, ", "));
}

// object[key] as T, required unless `fallback` is given; a wrong type is an error naming the key.
template <typename T>
T read(const Json& object, const char* key, const fs::path& file, const std::string& where,
       std::optional<T> fallback = std::nullopt) {
  if (!object.contains(key)) {
    FLEXNN_CHECK(fallback.has_value(), "preset {}: {} has no \"{}\"", file.string(), where, key);
    return *fallback;
  }
  const Json& value = object[key];
  bool ok = false;
  if constexpr (std::is_same_v<T, std::string>) ok = value.is_string();
  else if constexpr (std::is_integral_v<T>) ok = value.is_number_integer() && value.get<int64_t>() > 0;
  else ok = value.is_object();
  FLEXNN_CHECK(ok, "preset {}: \"{}\" in {} must be {}, found {}", file.string(), key, where,
               std::is_same_v<T, std::string> ? "a string"
               : std::is_integral_v<T>        ? "a positive integer"
                                              : "a JSON object",
               value.dump());
  return value.get<T>();
}

// Training options in a preset may not set what the preset sets itself.
Json training_object(const Json& object, const fs::path& file, const std::string& where) {
  const Json training = read<Json>(object, "training", file, where, Json::object());
  for (const char* key : {"epochs", "seed", "model", "data"})
    FLEXNN_CHECK(!training.contains(key), "preset {}: \"{}\" does not belong in {}'s training options: {}",
                 file.string(), key, where,
                 std::string(key) == "seed" ? "runs use seeds 1..seeds"
                                            : "set it at the top level (or in the run, for model)");
  return training;
}

// The settings every run shares once --quick and the command line's overrides are applied.
struct Settings {
  int64_t epochs, seeds;
  Json training;  // shared options
  Json overrides;  // the command line's, applied after each run's own
  std::vector<const PresetRun*> runs;
  fs::path out;
  std::string label;  // "quick" or ""
  std::optional<PresetEvaluation> evaluation;
};

// The evaluation's JSON once --quick's fields replace the preset's.
Json evaluation_json(const Preset& p, bool quick) {
  Json e = p.evaluation;
  if (quick && !e.is_null()) e.update(p.quick.value("evaluation", Json::object()));
  return e;
}

Settings settings(const Preset& p, const PresetOptions& o) {
  Settings s{p.epochs, p.seeds, p.training, Json::object(), {}, o.out, o.quick ? "quick" : "", std::nullopt};
  if (o.quick) {
    s.epochs = p.quick.value("epochs", s.epochs);
    s.seeds = p.quick.value("seeds", s.seeds);
    s.training.update(p.quick.value("training", Json::object()));
  }
  if (o.epochs) s.epochs = *o.epochs;
  if (o.seeds) s.seeds = *o.seeds;
  if (o.per_class) s.overrides["per_class"] = *o.per_class;
  if (o.test_per_class) s.overrides["test_per_class"] = *o.test_per_class;
  if (o.batch_size) s.overrides["batch_size"] = *o.batch_size;
  FLEXNN_CHECK(s.epochs > 0 && s.seeds > 0, "preset {}: epochs ({}) and seeds ({}) must be positive", p.name, s.epochs,
               s.seeds);
  for (const std::string& v : o.variants) {
    const bool known = std::any_of(p.runs.begin(), p.runs.end(), [&](const PresetRun& r) { return r.variant == v; });
    FLEXNN_CHECK(known, "preset {}: no variant '{}' (it has {})", p.name, v,
                 fmt::join(p.runs | std::views::transform(&PresetRun::variant), ", "));
  }
  if (const Json e = evaluation_json(p, o.quick); !e.is_null()) {
    s.evaluation = evaluation_from_json(e, fmt::format("preset {}: \"evaluation\"", p.name));
    if (o.repeats) s.evaluation->repeats = *o.repeats;
    if (o.attack_per_class) s.evaluation->per_class = *o.attack_per_class;
    FLEXNN_CHECK(s.evaluation->per_class == 0 || held_in_memory(p.data),
                 "preset {}: the evaluation's per_class needs a data set held in memory (fmnist, cifar10), but {} "
                 "streams its images from disk", p.name, p.data);
  } else {
    FLEXNN_CHECK(!o.repeats && !o.attack_per_class,
                 "preset {}: --repeats and --attack-per-class set its evaluation, but it has none", p.name);
  }
  const std::string source = s.evaluation ? s.evaluation->source : "";
  for (const PresetRun& r : p.runs)
    if (o.variants.empty() || r.variant == source ||
        std::find(o.variants.begin(), o.variants.end(), r.variant) != o.variants.end())
      s.runs.push_back(&r);
  if (s.out.empty()) s.out = fs::path("runs") / (o.quick ? p.name + "-quick" : p.name);
  return s;
}

// The training options of one (variant, seed) run. Throws, naming the preset and the variant, when
// the model is not in the registry or an option is wrong.
TrainingOptions run_options(const Preset& p, const Settings& s, const PresetOptions& o, const PresetRun& run,
                            int64_t seed) {
  TrainingOptions t;
  try {
    t.data = p.data;
    t.model = config_for_data(run.model, p.data);
    t.hflip = default_hflip(p.data);
    const std::string where = fmt::format("preset {}, variant '{}'", p.name, run.variant);
    update_from_json(t, s.training, where);
    update_from_json(t, run.training, where);
    update_from_json(t, s.overrides, where);
  } catch (const Error& e) {
    fail("preset {}: variant '{}' (model {}): {}", p.name, run.variant, run.model.dump(), e.what());
  }
  t.epochs = s.epochs;
  t.seed = static_cast<uint64_t>(seed);
  t.device = o.device;
  t.workers = o.workers;
  t.evaluate_each_epoch = true;
  return t;
}

// The two splits, opened once per model input shape.
struct Splits {
  std::unique_ptr<datasets::ImageSource> train, test;
};

const Splits& splits_for(std::map<std::tuple<int64_t, int64_t, int64_t>, Splits>& cache, const DataOptions& data,
                         const models::Config& config) {
  const models::ModelSpec spec = models::model_spec(config);
  Splits& splits = cache[{spec.channels, spec.height, spec.width}];
  if (!splits.train) splits = {open_split(data, spec, "train"), open_split(data, spec, "test")};
  return splits;
}


}  // namespace

Preset load_preset(const fs::path& file) {
  std::ifstream in(file);
  FLEXNN_CHECK(in.good(), "preset {}: cannot read the file (presets are in {})", file.string(), presets_dir().string());
  const Json j = Json::parse(in, nullptr, false);
  FLEXNN_CHECK(!j.is_discarded(), "preset {}: not valid JSON", file.string());
  check_keys(j, {"title", "description", "data", "epochs", "seeds", "training", "quick", "runs", "figure", "evaluation"},
             file, "the preset");
  Preset p;
  p.name = file.stem().string();
  p.title = read<std::string>(j, "title", file, "the preset");
  p.description = read<std::string>(j, "description", file, "the preset", "");
  p.data = read<std::string>(j, "data", file, "the preset");
  FLEXNN_CHECK(p.data == "fmnist" || p.data == "cifar10" || p.data == "imagenette" || p.data == "folder",
               "preset {}: \"data\" must be fmnist, cifar10, imagenette or folder, found '{}'", file.string(), p.data);
  p.epochs = read<int64_t>(j, "epochs", file, "the preset");
  p.seeds = read<int64_t>(j, "seeds", file, "the preset");
  p.training = training_object(j, file, "the preset");
  p.quick = read<Json>(j, "quick", file, "the preset", Json::object());
  check_keys(p.quick, {"epochs", "seeds", "training", "evaluation"}, file, "\"quick\"");
  (void)read<int64_t>(p.quick, "epochs", file, "\"quick\"", 1);
  (void)read<int64_t>(p.quick, "seeds", file, "\"quick\"", 1);
  (void)training_object(p.quick, file, "\"quick\"");
  const Json figure = read<Json>(j, "figure", file, "the preset", Json::object());
  check_keys(figure, {"x_label", "y_label"}, file, "\"figure\"");
  p.x_label = read<std::string>(figure, "x_label", file, "\"figure\"", p.x_label);
  p.y_label = read<std::string>(figure, "y_label", file, "\"figure\"", p.y_label);
  FLEXNN_CHECK(j.contains("runs") && j["runs"].is_array() && !j["runs"].empty(),
               "preset {}: \"runs\" must be a non-empty array of runs", file.string());
  for (size_t i = 0; i < j["runs"].size(); ++i) {
    const Json& r = j["runs"][i];
    const std::string where = fmt::format("run {}", i + 1);
    check_keys(r, {"variant", "label", "model", "training"}, file, where);
    PresetRun run{read<std::string>(r, "variant", file, where), read<std::string>(r, "label", file, where, ""),
                  read<Json>(r, "model", file, where), training_object(r, file, where)};
    if (run.label.empty()) run.label = run.variant;
    FLEXNN_CHECK(!run.variant.empty() && run.variant.find_first_of("/\\. ") == std::string::npos,
                 "preset {}: {}'s variant '{}' must be a non-empty name without '/', '\\', '.' or spaces (it names "
                 "the run's directory)", file.string(), where, run.variant);
    for (const PresetRun& other : p.runs)
      FLEXNN_CHECK(other.variant != run.variant, "preset {}: variant '{}' appears twice", file.string(), run.variant);
    p.runs.push_back(std::move(run));
  }
  p.evaluation = j.value("evaluation", Json());
  FLEXNN_CHECK(!p.quick.contains("evaluation") || !p.evaluation.is_null(),
               "preset {}: \"quick\" changes \"evaluation\", which the preset lacks", file.string());
  FLEXNN_CHECK(!p.quick.contains("evaluation") || p.quick["evaluation"].is_object(),
               "preset {}: \"evaluation\" in \"quick\" must be a JSON object, found {}", file.string(),
               p.quick.value("evaluation", Json()).dump());
  for (const bool quick : {false, true}) {
    if (p.evaluation.is_null()) break;
    const PresetEvaluation e = evaluation_from_json(
        evaluation_json(p, quick), fmt::format("preset {}: \"evaluation\"{}", file.string(), quick ? " (quick)" : ""));
    FLEXNN_CHECK(e.source.empty() || std::any_of(p.runs.begin(), p.runs.end(),
                                                 [&](const PresetRun& r) { return r.variant == e.source; }),
                 "preset {}: the evaluation's source '{}' is not one of its variants", file.string(), e.source);
  }
  return p;
}

fs::path presets_dir() {
  if (const char* dir = std::getenv("FLEXNN_PRESETS_DIR"); dir != nullptr && *dir != '\0') return dir;
  return fs::path(__FILE__).parent_path().parent_path() / "presets";  // tools/cli/presets.cpp → tools/presets
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(presets_dir(), error))
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

Json run_preset(const Preset& p, const PresetOptions& o) {
  const Settings s = settings(p, o);
  for (const PresetRun* run : s.runs) (void)run_options(p, s, o, *run, 1);  // every model exists, every option is valid
  fs::create_directories(s.out);
  const auto start = std::chrono::steady_clock::now();
  const DataOptions data{p.data, o.data_dir.empty() ? datasets::default_data_dir(p.data) : o.data_dir, o.skip_bad};
  fmt::print("{}: {} variant(s) x {} seed(s) x {} epoch(s) on {}{}, into {}\n", p.title, s.runs.size(), s.seeds,
             s.epochs, p.data, s.label.empty() ? "" : fmt::format(" [{}]", s.label), s.out.string());
  std::fflush(stdout);

  std::map<std::tuple<int64_t, int64_t, int64_t>, Splits> cache;
  const Output output = ProgressBar::stdout_is_terminal() ? Output::progress_bar : Output::lines;
  Json variants = Json::array();
  LineChart chart{.title = fmt::format("{} ({} epochs x {} seeds{})", p.title, s.epochs, s.seeds,
                                       s.label.empty() ? "" : ", " + s.label),
                  .x_label = p.x_label,
                  .y_label = p.y_label,
                  .x = {},
                  .series = {},
                  .y_min = 0,
                  .y_max = 100};
  for (int64_t e = 1; e <= s.epochs; ++e) chart.x.push_back(static_cast<double>(e));
  const std::string source = s.evaluation ? s.evaluation->source : "";
  std::vector<TrainedVariant> targets;
  fs::path source_run;
  for (const PresetRun* run : s.runs) {
    Json per_seed = Json::array();  // [seed][epoch]
    Json training;
    models::Config config;
    TrainedVariant& trained = targets.emplace_back(TrainedVariant{run->variant, run->label, {}});
    const int64_t seeds = run->variant == source ? 1 : s.seeds;  // one network crafts the transfer attacks
    for (int64_t seed = 1; seed <= seeds; ++seed) {
      const TrainingOptions t = run_options(p, s, o, *run, seed);
      const Splits& splits = splits_for(cache, data, t.model);
      fmt::print("{} ({}), seed {}\n", run->variant, run->label, seed);
      std::fflush(stdout);
      const fs::path dir = s.out / run->variant / fmt::format("seed{}", seed);
      const TrainingRun r = train_or_reuse(t, *splits.train, *splits.test, dir, output);
      trained.runs.push_back(dir);
      Json curve = Json::array();
      // A run trained elsewhere (e.g. by `reproduce table2`) may have tested only after its last epoch.
      for (const Json& record : r.log) curve.push_back(record.value("test_accuracy", kNaN));
      fmt::print("  test accuracy {:.2f}% after {} epoch(s) ({:.0f} s elapsed)\n", curve.back().get<double>(),
                 curve.size(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      std::fflush(stdout);
      per_seed.push_back(curve);
      config = r.config;
      training = to_json(t);
    }
    training.erase("seed");
    training.erase("model");
    if (run->variant == source) source_run = trained.runs.front(), targets.pop_back();
    std::vector<double> mean, sem;
    for (int64_t e = 0; e < s.epochs; ++e) {
      std::vector<double> values;
      for (const Json& curve : per_seed) values.push_back(curve[e].get<double>());
      const MeanSem m = mean_sem(values);
      mean.push_back(m.mean);
      sem.push_back(m.sem);
    }
    chart.series.push_back({run->label, mean, sem});
    variants.push_back({{"variant", run->variant},
                        {"label", run->label},
                        {"model", config},
                        {"training", training},
                        {"test_accuracy", per_seed},
                        {"mean", mean},
                        {"sem", sem},
                        {"final_mean", mean.back()},
                        {"final_sem", sem.back()}});
  }

  fmt::print("\n{:<14}{:<48}{:>20}\n", "variant", "network", fmt::format("test % at epoch {}", s.epochs));
  for (const Json& v : variants)
    fmt::print("{:<14}{:<48}{:>20}\n", v["variant"].get<std::string>(), v["label"].get<std::string>(),
               format_mean_sem({v["final_mean"].get<double>(),
                                v["sem"].back().is_number() ? v["sem"].back().get<double>() : kNaN}));
  fmt::print("mean ± SEM over {} seed(s); every epoch's in {}.json, plotted in {}.svg\n", s.seeds, p.name, p.name);

  const fs::path json_path = s.out / (p.name + ".json"), svg_path = s.out / (p.name + ".svg");
  write_svg_file(svg_path, render_svg(chart));
  Json report = {{"experiment", p.name},
                       {"title", p.title},
                       {"description", p.description},
                       {"label", s.label},
                       {"data", p.data},
                       {"epochs", s.epochs},
                       {"seeds", s.seeds},
                       {"variants", variants},
                       {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  if (s.evaluation && !targets.empty()) {
    const PresetRun& first = **std::find_if(s.runs.begin(), s.runs.end(),
                                            [&](const PresetRun* r) { return r->variant != source; });
    const Splits& splits = splits_for(cache, data, config_for_data(first.model, p.data));
    report["evaluation"] = run_evaluation(*s.evaluation, targets, source_run, *splits.test,
                                          {.name = p.name, .title = p.title, .data = p.data, .data_dir = data.dir,
                                           .out = s.out, .device = o.device, .batch_size = 100,
                                           .workers = o.workers});
    report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } else if (s.evaluation) {
    fmt::print("no network to attack: only the evaluation's source '{}' was run\n", source);
  }
  write_text_atomically(json_path, report.dump(2) + "\n", "JSON");
  fmt::print("wrote {} and {}\n", json_path.string(), svg_path.string());
  return report;
}

}  // namespace flexnn::cli
