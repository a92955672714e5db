// HMAX's S2 and C2 layers. An S2 unit compares the C1 patch under its window (all 4 orientations)
// with a learned prototype w of the same size: d = ||x − w||² = ||x||² − 2 x·w + ||w||², computed
// as conv(Σ_c C1², ones) − 2 conv(C1, w) + Σ w² so that the convolution kernels do the work, and
// responds exp(−d / (2σ²)). Windows are zero-padded by size / 2, as in pytorch_hmax. C2 is the
// global max of each prototype's S2 map over positions and C1 bands.
//
// In the flexible variant each S2 map is a flexible layer: its units blend the S2 response (the
// template match, the AND-like branch) with the max-pool of the C1 band over the same window and
// all orientations (the OR-like branch), by the paper's Eq. 1 with one threshold per unit
// (docs/hmax.md says why).
#pragma once

#include "engine/generator.hpp"
#include "engine/nn/flexible.hpp"
#include "engine/nn/module.hpp"
#include "models/hmax_s1.hpp"

#include <memory>
#include <vector>

namespace flexnn::models {

// How an S2 map's units are gated: none (the S2 response alone), or a flexible layer.
struct S2Flex {
  nn::FlexMode mode = nn::FlexMode::none;  // none, standard or reverse
  float sharpness = 50.0f;
  float threshold_mean = 0.5f, threshold_std = 0.1f;
  bool freeze_threshold = false;
};

// One patch size's S2 units on one C1 band [N, 4, H, W] -> [N, P, H', W'] (H' = H + 1 for even
// sizes, H for odd). The prototypes belong to the owning HmaxS2; with a flexible gate the band
// owns its thresholds [P, H', W'].
class HmaxS2Band : public nn::Module {
 public:
  HmaxS2Band(const Tensor& prototypes, int64_t band_size, float sigma, const S2Flex& flex, Generator& gen);
  Tensor forward(const Tensor& c1) override;
  // The maximum of each prototype's map over positions, [N, P]: fused with the response
  // (ops::hmax_s2_max) unless the band is flexible.
  Tensor maxima(const Tensor& c1);

  Tensor threshold;  // a parameter (or a frozen buffer) in a flexible band; undefined otherwise

 private:
  struct Terms {  // of the distance: ops::hmax_s2's operands
    Tensor cross, patch_sq, weight_sq;
  };
  Terms distance_terms(const Tensor& c1) const;

  Tensor prototypes_;  // [P, 4, size, size], shared with the owning HmaxS2
  Tensor ones_;        // [1, 1, size, size]: the window of ||x||²
  int64_t band_size_;
  float sigma_;
  S2Flex flex_;
};

// The S2 units of one patch size over every C1 band, and their C2 maxima. Parameter names:
// weight (the prototypes [P, 4, size, size]); c1_08.threshold, ... per band when flexible.
class HmaxS2 : public nn::Module {
 public:
  // band_names and band_sizes: the C1 bands' module names and map sizes, in band order.
  HmaxS2(int64_t patch_size, int64_t prototypes, const std::vector<std::string>& band_names,
         const std::vector<int64_t>& band_sizes, float sigma, const S2Flex& flex, Generator& gen);
  // S2 reads every C1 band at once: use c2(). Throws.
  Tensor forward(const Tensor& x) override;
  // C2: [N, P], the max of each prototype's S2 maps over positions and bands.
  Tensor c2(const std::vector<Tensor>& c1_bands);

  int64_t patch_size;
  Tensor weight;  // the prototypes
  std::vector<std::shared_ptr<HmaxS2Band>> bands;
};

}  // namespace flexnn::models
