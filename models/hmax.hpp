// hmax: the HMAX model of object recognition (Serre et al. 2007, as implemented in
// wmvanvliet/pytorch_hmax, the version the paper used) for 28x28 grayscale images, with a linear
// classifier on its C2 features, in the paper's three variants (Fig. 4A):
//   baseline  S1 (fixed Gabor bank) → C1 (max over 2 scales, then max-pool) → S2 (gaussian of the
//             Euclidean distance to learned prototypes) → C2 (global max) → Linear
//   conv      the C1 max-pools replaced by convolutions of the same geometry (flexible layers
//             executing convolution only: the paper's Convolutional Baseline); S2 as in baseline
//   flexible  C1 and S2 units are flexible layers (Eq. 1): C1 blends its max-pool with a
//             convolution, S2 blends its template match with a max-pool of the same window
// Every constant, its source and our choices where the paper is silent: docs/hmax.md.
//
// Parameter names (pytorch_hmax's module names): c1_08.conv.weight, c1_08.conv.bias,
// c1_08.threshold, ... (conv / flexible); s2_0.weight (the prototypes [P, 4, size, size]), ...;
// s2_0.c1_08.threshold, ... (flexible S2); fc.weight, fc.bias.
#pragma once

#include "engine/generator.hpp"
#include "engine/nn/flexible.hpp"
#include "engine/nn/layers.hpp"
#include "models/hmax_s1.hpp"
#include "models/hmax_s2.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string_view>
#include <vector>

namespace flexnn::models {

enum class HmaxVariant { baseline, conv, flexible };
HmaxVariant parse_hmax_variant(std::string_view name);  // an error lists the valid names
std::string_view hmax_variant_name(HmaxVariant variant);

struct HmaxOptions {
  HmaxVariant variant = HmaxVariant::baseline;
  std::vector<int64_t> patch_sizes{2, 4, 6, 8, 10, 12, 14, 16};  // S2 prototype sizes
  int64_t prototypes = 400;                                      // per patch size
  float sigma = 1.0f;                                            // S2's gaussian tuning width
  bool flexible_s2 = true;   // flexible variant: S2 flexible too (false: C1 only, as the authors' code)
  nn::FlexMode flex = nn::FlexMode::standard;  // the flexible variant's gate: standard (Eq. 1) or reverse
  float sharpness = 50.0f;
  float threshold_mean = 0.5f, threshold_std = 0.1f;
  bool freeze_threshold = false;
  bool imprint = false;  // the trainer imprints the prototypes from C1 patches (imprint_prototypes)
  std::vector<float> mean{0.0f}, std{1.0f};  // input normalisation, part of the model
};

// The complete default config, {"model": "hmax", ...}.
nlohmann::json hmax_defaults();
// Reads a complete config (every key of hmax_defaults()); a key of the wrong type or an invalid
// value is an error naming it.
HmaxOptions hmax_options_from_config(const nlohmann::json& config);

class Hmax : public nn::Module {
 public:
  static constexpr int64_t kImageSize = 28, kClasses = 10, kBands = 8;
  // C1 band b pools S1 scales 2b and 2b + 1 with a window of c1_pool_size(b) = 8 + 2b pixels.
  static int64_t c1_pool_size(int64_t band) { return 8 + 2 * band; }

  explicit Hmax(const HmaxOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [N, 1, 28, 28] in [0, 1] -> logits [N, 10]

  // The stages, for inspection and prototype imprinting.
  std::vector<Tensor> s1(const Tensor& x);                    // 16 x [N, 4, 28, 28]
  std::vector<Tensor> c1(const std::vector<Tensor>& s1);      // 8 x [N, 4, H_b, H_b]
  Tensor c2(const std::vector<Tensor>& c1);                   // [N, patch sizes x prototypes]
  const HmaxOptions& options() const { return options_; }
  // The C1 maps' side, per band (8, 6, 5, 5, 4, 4, 3, 3 for 28x28 images).
  const std::vector<int64_t>& band_sizes() const { return band_sizes_; }

  std::shared_ptr<nn::Normalize> normalize;
  std::vector<std::shared_ptr<GaborS1>> s1_units;
  std::vector<std::shared_ptr<nn::FlexibleConv2d>> c1_units;  // conv and flexible variants only
  std::vector<std::shared_ptr<HmaxS2>> s2_units;
  std::shared_ptr<nn::Linear> fc;

 private:
  HmaxOptions options_;
  std::vector<int64_t> band_sizes_;
};

// Sets every prototype to a C1 patch of a random image of `images` [N, 1, 28, 28], at a random
// band and S2 position (the window that S2 unit reads, zero-padded as S2 pads), drawn from `gen`.
// Serre et al.'s imprinting, as an initialisation before gradient training.
void imprint_prototypes(Hmax& model, const Tensor& images, Generator& gen);

}  // namespace flexnn::models
