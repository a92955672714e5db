// Accuracy of a model over a whole data set, clean and under FGSM at several strengths, in one
// pass over the data: each batch's clean forward also yields the input gradient, and each ε
// then costs one more forward. Accuracies are in percent of every example of the set.
#pragma once

#include "attacks/fgsm.hpp"
#include "datasets/image_dataset.hpp"
#include "engine/nn/module.hpp"

#include <string>
#include <vector>

namespace flexnn::attacks {

struct EvaluationOptions {
  int64_t batch_size = 100;
  std::vector<float> fgsm_eps;  // none: clean accuracy only
  EpsSpace eps_space = EpsSpace::pixel;
  std::vector<float> normalization_std{1.0f};  // the model's, for EpsSpace::normalized
};

struct AttackResult {
  std::string name;
  float eps;
  double accuracy;  // percent
};

struct EvaluationResult {
  int64_t n = 0;
  double clean_accuracy = 0;  // percent
  std::vector<AttackResult> attacks;
  double pool_fraction;  // of all flexible-layer units, those that took the pool branch on clean inputs (NaN: none)
  double seconds = 0;
};

// Puts the model in evaluation mode (and leaves it there).
EvaluationResult evaluate(nn::Module& model, const datasets::ImageDataset& data, const EvaluationOptions& options);

}  // namespace flexnn::attacks
