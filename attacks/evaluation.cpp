// The evaluation loop: batches in order, clean logits and input gradient from one pass, one
// forward per FGSM strength, and the flexible layers' pool fraction on the clean pass.
#include "attacks/evaluation.hpp"

#include "datasets/data_loader.hpp"
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "models/registry.hpp"

#include <chrono>
#include <limits>

namespace flexnn::attacks {
namespace {

// Correct predictions among the logits' rows; the labels are on the CPU.
int64_t correct(const Tensor& logits, const Tensor& labels) {
  const Tensor predicted = ops::argmax(logits, 1).to(kCPU);
  const int64_t* p = predicted.data<int64_t>();
  const int64_t* truth = labels.data<int64_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < labels.numel(); ++i) n += p[i] == truth[i];
  return n;
}

}  // namespace

EvaluationResult evaluate(nn::Module& model, const datasets::ImageSource& data, const EvaluationOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  FLEXNN_CHECK(data.size() > 0, "evaluate: the data set is empty");
  model.eval();
  const Device device = model.device();
  const std::vector<nn::FlexibleConv2d*> flexible = models::flexible_layers(model);
  for (nn::FlexibleConv2d* layer : flexible) layer->reset_pool_fraction();
  std::vector<std::vector<float>> eps;
  for (float e : options.fgsm_eps) eps.push_back(pixel_eps(e, options.eps_space, options.normalization_std));

  datasets::DataLoader loader(data, {.batch_size = options.batch_size, .shuffle = false, .workers = options.workers});
  loader.start_epoch(0);
  int64_t clean = 0, seen = 0;
  std::vector<int64_t> adversarial(eps.size(), 0);
  while (auto batch = loader.next()) {
    if (batch->labels.numel() == 0) continue;  // every example of the batch was skipped as unreadable
    seen += batch->labels.numel();
    const Tensor images = batch->images.to(device);
    for (nn::FlexibleConv2d* layer : flexible) layer->count_pool_units(true);
    Tensor logits;
    Tensor grad;
    if (eps.empty()) {
      NoGradGuard no_grad;
      logits = model(images);
    } else {
      InputGradient g = loss_input_gradient(model, images, batch->labels.to(device));
      logits = g.logits;
      grad = g.grad;
    }
    for (nn::FlexibleConv2d* layer : flexible) layer->count_pool_units(false);
    clean += correct(logits, batch->labels);
    NoGradGuard no_grad;
    for (size_t k = 0; k < eps.size(); ++k)
      adversarial[k] += correct(model(fgsm_step(images, grad, eps[k])), batch->labels);
  }

  FLEXNN_CHECK(seen > 0, "evaluate: none of the data set's {} examples could be read", data.size());
  EvaluationResult result;
  result.n = seen;
  const double percent = 100.0 / static_cast<double>(seen);
  result.clean_accuracy = clean * percent;
  for (size_t k = 0; k < eps.size(); ++k) result.attacks.push_back({"fgsm", options.fgsm_eps[k], adversarial[k] * percent});
  ops::FlexibleStats total;
  for (nn::FlexibleConv2d* layer : flexible) {
    total.pool_units += layer->pool_counts().pool_units;
    total.units += layer->pool_counts().units;
  }
  result.pool_fraction = total.units == 0 ? std::numeric_limits<double>::quiet_NaN()
                                          : static_cast<double>(total.pool_units) / static_cast<double>(total.units);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

EvaluationResult evaluate(nn::Module& model, const datasets::ImageDataset& data, const EvaluationOptions& options) {
  return evaluate(model, datasets::ImageDatasetSource(data), options);
}

}  // namespace flexnn::attacks
