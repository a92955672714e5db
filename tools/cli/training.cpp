// The training loop and its run directory: parameter groups, StepLR, per-epoch log records,
// checkpoints, the resumable state, and the reuse of finished runs.
#include "tools/cli/training.hpp"

#include "attacks/evaluation.hpp"
#include "datasets/data_loader.hpp"
#include "datasets/transforms.hpp"
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/io/atomic_file.hpp"
#include "engine/io/checkpoint.hpp"
#include "engine/io/decimal.hpp"
#include "engine/ops.hpp"
#include "engine/optim/sgd.hpp"
#include "engine/optim/step_lr.hpp"
#include "tools/cli/json_file.hpp"
#include "tools/cli/progress.hpp"
#include "tools/cli/training_data.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>

namespace flexnn::cli {
namespace {

using Json = nlohmann::json;

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kStateFile = "train_state.safetensors";
constexpr const char* kLogFile = "log.jsonl";
constexpr const char* kSummaryFile = "summary.json";
constexpr const char* kMomentumPrefix = "momentum.";
constexpr const char* kModelPrefix = "model.";

bool is_threshold(const std::string& name) { return name == "threshold" || name.ends_with(".threshold"); }

// The optimiser and the parameter names in its group order (matching SGD::momentum_buffers()).
struct Optimiser {
  std::vector<std::string> names;
  std::unique_ptr<optim::SGD> sgd;
};

Optimiser make_optimiser(const nn::Module& model, const TrainingOptions& o) {
  ParameterGroups groups = parameter_groups(model, o);
  return {std::move(groups.names), std::make_unique<optim::SGD>(std::move(groups.groups))};
}

// The resumable state: the weights, the momentum buffers, the generator and the log so far.
void save_run_state(const std::filesystem::path& path, const nn::Module& model, Optimiser& optimiser,
                const Json& identity, int64_t epochs_done, const Json& log) {
  nn::NamedTensors tensors;
  for (const auto& [name, t] : model.state()) tensors.emplace_back(kModelPrefix + name, t);
  const std::vector<Tensor>& buffers = optimiser.sgd->momentum_buffers();
  for (size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].defined()) tensors.emplace_back(kMomentumPrefix + optimiser.names[i], buffers[i]);
  const Generator& gen = default_generator();
  save_tensors(path, tensors,
               {{"flexnn.training", identity.dump()},
                {"flexnn.epochs_done", std::to_string(epochs_done)},
                {"flexnn.generator", Json{gen.seed(), gen.offset()}.dump()},
                {"flexnn.log", log.dump()}});
}

// The run's options without what may change between a run and its resumption.
Json run_identity(const TrainingOptions& o, const models::Config& config) {
  Json identity = to_json(o);
  identity.erase("epochs");
  identity["model"] = config;
  return identity;
}

// Restores a run; returns the number of epochs it had completed and its log.
std::pair<int64_t, Json> restore_run(const std::filesystem::path& path, nn::Module& model, Optimiser& optimiser,
                                    const Json& identity) {
  const TensorFile file = load_tensors(path);
  auto meta = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    FLEXNN_CHECK(it != file.metadata.end(), "{}: not a training state (no '{}' in its metadata)", path.string(), key);
    return it->second;
  };
  const Json saved = Json::parse(meta("flexnn.training"));
  const Json difference = Json::diff(saved, identity);
  if (!difference.empty()) {
    const std::string where = difference[0].value("path", std::string("/"));  // e.g. /model/flex or /lr
    const Json::json_pointer pointer(where);
    fail("--resume: the run in '{}' was made with {} = {}, but this command asks for {}; resume with the same "
         "options (only --epochs may change)",
         path.parent_path().string(), where.substr(1), saved.contains(pointer) ? saved[pointer].dump() : "(nothing)",
         identity.contains(pointer) ? identity[pointer].dump() : "(nothing)");
  }
  TensorFile model_part, momentum_part;
  for (const auto& [name, t] : file.tensors) {
    if (name.starts_with(kModelPrefix)) model_part.tensors.emplace_back(name.substr(std::strlen(kModelPrefix)), t);
    if (name.starts_with(kMomentumPrefix))
      momentum_part.tensors.emplace_back(name.substr(std::strlen(kMomentumPrefix)), t);
  }
  load_state(model, model_part, path);
  std::vector<Tensor>& buffers = optimiser.sgd->momentum_buffers();
  for (const auto& [name, t] : momentum_part.tensors) {
    const auto at = std::find(optimiser.names.begin(), optimiser.names.end(), name);
    FLEXNN_CHECK(at != optimiser.names.end(), "{}: momentum for unknown parameter '{}'", path.string(), name);
    buffers[at - optimiser.names.begin()] = t.device() == model.device() ? t.clone() : t.to(model.device());
  }
  const Json gen = Json::parse(meta("flexnn.generator"));
  default_generator().set_state(gen.at(0).get<uint64_t>(), gen.at(1).get<uint64_t>());
  return {std::stoll(meta("flexnn.epochs_done")), Json::parse(meta("flexnn.log"))};
}

// The run's data set: the one it names, else the model's own.
std::string data_name(const TrainingOptions& o) {
  return o.data.empty() ? models::model_spec(o.model).dataset : o.data;
}

void write_log(const std::filesystem::path& path, const Json& log) {
  std::string text;
  for (const Json& record : log) text += record.dump() + "\n";
  write_text_atomically(path, text, "log");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ParameterGroups parameter_groups(const nn::Module& model, const TrainingOptions& o) {
  optim::ParamGroup weights{{}, {o.lr, o.momentum, o.weight_decay}}, thresholds{{}, {o.lr, o.momentum, 0.0f}};
  std::vector<std::string> weight_names, threshold_names;
  for (const auto& [name, p] : model.named_parameters()) {
    (is_threshold(name) ? thresholds.params : weights.params).push_back(p);
    (is_threshold(name) ? threshold_names : weight_names).push_back(name);
  }
  weight_names.insert(weight_names.end(), threshold_names.begin(), threshold_names.end());
  return {{weights, thresholds}, weight_names};
}

Json to_json(const TrainingOptions& o) {
  Json json = {{"model", o.model},
               {"epochs", o.epochs},
               {"seed", o.seed},
               {"batch_size", o.batch_size},
               {"lr", shortest_decimal(o.lr)},
               {"momentum", shortest_decimal(o.momentum)},
               {"weight_decay", shortest_decimal(o.weight_decay)},
               {"lr_step", o.lr_step},
               {"lr_gamma", shortest_decimal(o.lr_gamma)},
               {"per_class", o.per_class}};
  if (!o.data.empty() && o.data != models::model_spec(o.model).dataset) json["data"] = o.data;
  if (o.hflip > 0) json["hflip"] = shortest_decimal(o.hflip);
  if (o.test_per_class > 0) json["test_per_class"] = o.test_per_class;
  return json;
}

void update_from_json(TrainingOptions& o, const Json& json, const std::string& where) {
  FLEXNN_CHECK(json.is_object(), "{}: training options must be a JSON object, found {}", where, json.dump());
  for (const auto& [key, value] : json.items()) {
    const auto read = [&]<typename T>(T& field) {
      const bool integral = std::is_integral_v<T>;
      FLEXNN_CHECK(integral ? value.is_number_integer() : value.is_number(), "{}: training option \"{}\" must be {}, "
                   "found {}", where, key, integral ? "an integer" : "a number", value.dump());
      field = value.get<T>();
    };
    if (key == "epochs") read(o.epochs);
    else if (key == "seed") read(o.seed);
    else if (key == "batch_size") read(o.batch_size);
    else if (key == "lr") read(o.lr);
    else if (key == "momentum") read(o.momentum);
    else if (key == "weight_decay") read(o.weight_decay);
    else if (key == "lr_step") read(o.lr_step);
    else if (key == "lr_gamma") read(o.lr_gamma);
    else if (key == "per_class") read(o.per_class);
    else if (key == "test_per_class") read(o.test_per_class);
    else if (key == "hflip") read(o.hflip);
    else
      fail("{}: unknown training option \"{}\" (known: epochs, seed, batch_size, lr, momentum, weight_decay, "
           "lr_step, lr_gamma, per_class, test_per_class, hflip)", where, key);
  }
}

TrainingRun train(const TrainingOptions& o, const datasets::ImageDataset& train_set,
                  const datasets::ImageDataset& test_set, const std::filesystem::path& out, bool resume,
                  Output output) {
  return train(o, datasets::ImageDatasetSource(train_set), datasets::ImageDatasetSource(test_set), out, resume,
               output);
}

TrainingRun train(const TrainingOptions& o, const datasets::ImageSource& full_train_set,
                  const datasets::ImageSource& full_test_set, const std::filesystem::path& out, bool resume,
                  Output output) {
  FLEXNN_CHECK(o.epochs > 0 && o.batch_size > 0 && o.lr > 0 && o.lr_step > 0,
               "train: epochs ({}), batch size ({}), learning rate ({}) and lr step ({}) must be positive", o.epochs,
               o.batch_size, o.lr, o.lr_step);
  FLEXNN_CHECK(o.per_class >= 0 && o.test_per_class >= 0 && o.hflip >= 0 && o.hflip <= 1,
               "train: per_class ({}) and test_per_class ({}) must be >= 0, and hflip ({}) in [0, 1]", o.per_class,
               o.test_per_class, o.hflip);
  const models::Config config = models::complete_config(o.model);
  const std::string data = data_name(o);
  check_data_fits(full_train_set, config, data);
  const Json identity = run_identity(o, config);
  std::filesystem::create_directories(out);
  const bool exists = std::filesystem::exists(out / kStateFile) || std::filesystem::exists(out / kModelFile);
  FLEXNN_CHECK(resume || !exists,
               "'{}' already holds a training run; pass --resume to continue it, or choose another --out",
               out.string());
  FLEXNN_CHECK(!resume || std::filesystem::exists(out / kStateFile),
               "--resume: '{}' holds no training state ({}) to resume", out.string(), kStateFile);

  manual_seed(o.seed);
  std::shared_ptr<nn::Module> model = models::build_model(config, default_generator());
  model->to(o.device);
  Optimiser optimiser = make_optimiser(*model, o);
  optim::StepLR scheduler(*optimiser.sgd, o.lr_step, o.lr_gamma);
  int64_t first_epoch = 0;
  Json log = Json::array();
  if (resume) std::tie(first_epoch, log) = restore_run(out / kStateFile, *model, optimiser, identity);
  scheduler.set_epoch(first_epoch);

  // The full sets are used in place, never copied.
  const std::optional<datasets::ImageDatasetSource> train_subset =
      balanced_subset(full_train_set, o.per_class, o.seed, data, "per_class");
  const std::optional<datasets::ImageDatasetSource> test_subset =
      balanced_subset(full_test_set, o.test_per_class, 0, data, "test_per_class");
  const datasets::ImageSource& train_set = train_subset ? *train_subset : full_train_set;
  const datasets::ImageSource& test_set = test_subset ? *test_subset : full_test_set;
  datasets::DataLoader loader(
      train_set, {.batch_size = o.batch_size,
                  .shuffle = true,
                  .seed = o.seed,
                  .transform = o.hflip > 0 ? datasets::transforms::random_horizontal_flip(o.hflip) : nullptr,
                  .workers = o.workers});
  if (output != Output::quiet && first_epoch > 0)
    fmt::print("resuming {} after epoch {} of {}\n", out.string(), first_epoch, o.epochs);

  const auto run_start = std::chrono::steady_clock::now();
  for (int64_t epoch = first_epoch; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const float lr = optimiser.sgd->param_groups()[0].options.lr;
    ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, o.epochs), loader.num_batches(),
                    output == Output::progress_bar);
    model->train();
    loader.start_epoch(epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step = 0;
    while (auto batch = loader.next()) {
      if (batch->labels.numel() == 0) continue;  // every example of the batch was skipped as unreadable
      const Tensor logits = (*model)(batch->images.to(o.device));
      const Tensor loss = ops::cross_entropy(logits, batch->labels.to(o.device));
      optimiser.sgd->zero_grad();
      loss.backward();
      optimiser.sgd->step();
      const int64_t b = batch->labels.numel();
      loss_sum += loss.item() * static_cast<double>(b);
      const Tensor predicted = ops::argmax(logits.detach(), 1).to(kCPU);
      for (int64_t i = 0; i < b; ++i) correct += predicted.data<int64_t>()[i] == batch->labels.data<int64_t>()[i];
      seen += b;
      bar.update(++step, loss_sum / seen, 100.0 * correct / seen, seen / seconds_since(start));
    }
    scheduler.step();
    const double train_seconds = seconds_since(start);
    FLEXNN_CHECK(std::isfinite(loss_sum), "train: the loss became {} in epoch {} (learning rate {} too high?)",
                 loss_sum, epoch + 1, lr);
    Json record = {{"epoch", epoch + 1},
                   {"lr", shortest_decimal(lr)},
                   {"train_loss", loss_sum / seen},
                   {"train_accuracy", 100.0 * correct / seen},
                   {"seconds", train_seconds},
                   {"images_per_s", seen / train_seconds}};
    if (o.evaluate_each_epoch || epoch + 1 == o.epochs) {
      const attacks::EvaluationResult test =
          attacks::evaluate(*model, test_set, {.batch_size = o.batch_size, .fgsm_eps = {}, .workers = o.workers});
      record["test_accuracy"] = test.clean_accuracy;
      if (!std::isnan(test.pool_fraction)) record["pool_fraction"] = test.pool_fraction;
    }
    log.push_back(record);
    save_run_state(out / kStateFile, *model, optimiser, identity, epoch + 1, log);
    models::save_model(out / kModelFile, *model, config, {{"flexnn.epochs", std::to_string(epoch + 1)}});
    write_log(out / kLogFile, log);
    if (output != Output::quiet)
      bar.finish(fmt::format("loss {:.4f}  train {:.2f}%{}  {:.1f} s  {:.0f} img/s", loss_sum / seen,
                             100.0 * correct / seen,
                             record.contains("test_accuracy")
                                 ? fmt::format("  test {:.2f}%", record["test_accuracy"].get<double>())
                                 : "",
                             train_seconds, seen / train_seconds));
  }

  const Json& last = log.back();
  Json summary = {{"config", config},
                  {"training", to_json(o)},
                  {"data", data},
                  {"train_images", train_set.size()},
                  {"test_images", test_set.size()},
                  {"device", o.device.str()},
                  {"epochs", o.epochs},
                  {"final", last},
                  {"test_accuracy", last.value("test_accuracy", std::nan(""))},
                  {"seconds_this_session", seconds_since(run_start)}};
  write_text_atomically(out / kSummaryFile, summary.dump(2) + "\n", "JSON");
  return {model, config, summary, log};
}

TrainingRun train_or_reuse(const TrainingOptions& o, const datasets::ImageSource& train_set,
                           const datasets::ImageSource& test_set, const std::filesystem::path& out, Output output) {
  // The options as recorded, with the model's config completed: a run made from {"model":
  // "fmnist-small", "flex": "none"} is the one a complete config of the same network asks for.
  const auto comparable = [](Json training) {
    if (training.is_object() && training.contains("model"))
      training["model"] = models::complete_config(training["model"]);
    return training;
  };
  const Json summary = read_json_file(out / kSummaryFile);
  if (!summary.is_discarded() && comparable(summary.value("training", Json())) == comparable(to_json(o))) {
    models::LoadedModel loaded = models::load_model(out / kModelFile);
    loaded.model->to(o.device);
    Json log = Json::array();
    std::ifstream lines(out / kLogFile);
    for (std::string line; std::getline(lines, line);) log.push_back(Json::parse(line));
    FLEXNN_CHECK(static_cast<int64_t>(log.size()) == o.epochs, "{}: the finished run's log has {} records for {} "
                 "epochs; remove the run directory to train it again", (out / kLogFile).string(), log.size(),
                 o.epochs);
    return {loaded.model, loaded.config, summary, log};
  }
  return train(o, train_set, test_set, out, std::filesystem::exists(out / kStateFile), output);
}

}  // namespace flexnn::cli
