// `flexnn demo`: the engine end to end in a few seconds, with no data files. Trains the small CNN
// on the synthetic bars problem with SGD, reports loss and accuracy per epoch, saves a
// checkpoint, reloads it into a fresh model and checks that the reloaded model scores the same.
#include "datasets/synthetic.hpp"
#include "engine/flexnn.hpp"
#include "models/small_cnn.hpp"
#include "tools/cli/commands.hpp"

#include <fmt/core.h>

#include <chrono>
#include <filesystem>

namespace flexnn::cli {
namespace {

struct DemoOptions {
  int epochs = 5;
  uint64_t seed = 0;
  int64_t train_size = 2048;
  int64_t batch = 64;
  float lr = 0.05f;
  int threads = 0;
  std::string device = "cpu";
  std::string out = "runs/demo";
};

// Accuracy of the model on the data, in evaluation mode and without recording a graph.
double evaluate(nn::Module& model, const datasets::LabelledImages& data) {
  NoGradGuard no_grad;
  model.eval();
  const Tensor predicted = ops::argmax(model(data.images.to(model.device())), 1).to(kCPU);
  int64_t correct = 0;
  for (int64_t i = 0; i < predicted.numel(); ++i) correct += predicted.data<int64_t>()[i] == data.labels.data<int64_t>()[i];
  model.train();
  return static_cast<double>(correct) / static_cast<double>(predicted.numel());
}

void run_demo(const DemoOptions& o) {
  if (o.threads > 0) cpu::set_num_threads(o.threads);
  const Device device = parse_device(o.device);
  constexpr int64_t kSize = 16;
  Generator gen(o.seed);
  const datasets::LabelledImages train = datasets::make_bars(o.train_size, kSize, gen);
  const datasets::LabelledImages test = datasets::make_bars(512, kSize, gen);
  auto model = models::make_small_cnn(1, kSize, datasets::kBarClasses, 8, gen);
  model->to(device);
  optim::SGD sgd(model->parameters(), {o.lr, 0.9f});
  fmt::print("flexnn demo: small CNN on synthetic bars ({} train / {} test, {}x{}), on {}\n", o.train_size,
             test.images.size(0), kSize, kSize, device.str());

  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int64_t> order = gen.permutation(o.train_size);
    double loss_sum = 0;
    int64_t batches = 0;
    for (int64_t b = 0; b + o.batch <= o.train_size; b += o.batch, ++batches) {
      const datasets::LabelledImages batch = datasets::take(train, std::span(order).subspan(b, o.batch));
      sgd.zero_grad();
      Tensor loss = ops::cross_entropy((*model)(batch.images.to(device)), batch.labels.to(device));
      loss.backward();
      sgd.step();
      loss_sum += loss.item();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("epoch {:>2}  loss {:.4f}  train acc {:.2f}%  test acc {:.2f}%  {:.0f} images/s\n", epoch,
               loss_sum / static_cast<double>(batches), 100 * evaluate(*model, train), 100 * evaluate(*model, test),
               static_cast<double>(batches * o.batch) / seconds);
  }

  std::filesystem::create_directories(o.out);
  const std::filesystem::path path = std::filesystem::path(o.out) / "small_cnn.safetensors";
  save_checkpoint(*model, path, {{"flexnn.config", R"({"model":"small-cnn","classes":4,"image_size":16})"}});
  Generator other(o.seed + 1);
  auto reloaded = models::make_small_cnn(1, kSize, datasets::kBarClasses, 8, other);
  reloaded->to(device);
  load_checkpoint(*reloaded, path);
  const double original_accuracy = evaluate(*model, test), reloaded_accuracy = evaluate(*reloaded, test);
  fmt::print("saved {} and reloaded it: test accuracy {:.2f}% (original {:.2f}%)\n", path.string(),
             100 * reloaded_accuracy, 100 * original_accuracy);
  FLEXNN_CHECK(reloaded_accuracy == original_accuracy, "demo: the reloaded model scores {} but the original {}",
               reloaded_accuracy, original_accuracy);
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand("demo", "Train a small CNN on synthetic bars, save and reload it (seconds, no data)");
  demo->add_option("--epochs", options->epochs, "Training epochs")->check(CLI::Range(1, 1000))->capture_default_str();
  demo->add_option("--seed", options->seed, "Seed of every random draw")->capture_default_str();
  demo->add_option("--train-size", options->train_size, "Training images")->check(CLI::Range(64, 1 << 20))->capture_default_str();
  demo->add_option("--batch", options->batch, "Batch size")->check(CLI::Range(1, 4096))->capture_default_str();
  demo->add_option("--lr", options->lr, "SGD learning rate (momentum 0.9)")->check(CLI::PositiveNumber)->capture_default_str();
  demo->add_option("--threads", options->threads, "CPU threads (0: all)")->check(CLI::Range(0, 1024))->capture_default_str();
  demo->add_option("--device", options->device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda", "cuda:0"}))
      ->capture_default_str();
  demo->add_option("--out", options->out, "Directory for the checkpoint")->capture_default_str();
  demo->callback([options] { run_demo(*options); });
}

}  // namespace flexnn::cli
