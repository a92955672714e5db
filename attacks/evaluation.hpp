// Accuracy of a model over a whole data set, clean and under FGSM at several strengths, in one
// pass over the data: each batch's clean forward also yields the input gradient, and each ε
// then costs one more forward. The data is any ImageSource (an in-memory ImageDataset, or image
// files decoded on the fly, e.g. Imagenette). Accuracies are in percent of every example the
// source gives (a source told to skip unreadable files leaves those out).
#pragma once

#include "attacks/fgsm.hpp"
#include "datasets/image_dataset.hpp"
#include "datasets/image_source.hpp"
#include "engine/nn/module.hpp"

#include <string>
#include <vector>

namespace flexnn::attacks {

struct EvaluationOptions {
  int64_t batch_size = 100;
  std::vector<float> fgsm_eps;  // none: clean accuracy only
  EpsSpace eps_space = EpsSpace::pixel;
  std::vector<float> normalization_std{1.0f};  // the model's, for EpsSpace::normalized
  int64_t workers = 1;  // threads that load (decode) each batch's examples; results do not depend on it
};

struct AttackResult {
  std::string name;
  float eps;
  double accuracy;  // percent
};

struct EvaluationResult {
  int64_t n = 0;  // examples evaluated
  double clean_accuracy = 0;  // percent
  std::vector<AttackResult> attacks;
  double pool_fraction;  // of all flexible-layer units, those that took the pool branch on clean inputs (NaN: none)
  double seconds = 0;
};

// Puts the model in evaluation mode (and leaves it there). Examples are taken in index order, each
// loaded with the randomness of (seed 0, epoch 0, its index).
EvaluationResult evaluate(nn::Module& model, const datasets::ImageSource& data, const EvaluationOptions& options);
// The same over an in-memory data set (through datasets::ImageDatasetSource).
EvaluationResult evaluate(nn::Module& model, const datasets::ImageDataset& data, const EvaluationOptions& options);

}  // namespace flexnn::attacks
