// HMAX's S2 units (Euclidean distance to prototypes through convolutions, gaussian tuning, the
// optional flexible gate) and the C2 maxima.
#include "models/hmax_s2.hpp"

#include "engine/nn/init.hpp"
#include "engine/ops.hpp"

#include <cmath>

namespace flexnn::models {
namespace {

// conv2d(x, weight, stride 1, padding `pad`) through whichever formulation multiplies fewer
// zeros: im2col's window of size² taps per output, or the Toeplitz product's H x W inputs per
// output when the map is smaller than the window.
Tensor window_conv(const Tensor& x, const Tensor& weight, int64_t pad) {
  const bool small_map = x.size(2) * x.size(3) < weight.size(2) * weight.size(3);
  return small_map ? ops::conv2d_toeplitz(x, weight, 1, pad) : ops::conv2d(x, weight, {}, 1, pad);
}

}  // namespace

HmaxS2Band::HmaxS2Band(const Tensor& prototypes, int64_t band_size, float sigma, const S2Flex& flex, Generator& gen)
    : prototypes_(prototypes), band_size_(band_size), sigma_(sigma), flex_(flex) {
  const int64_t size = prototypes.size(2);
  ones_ = register_buffer("ones", Tensor::ones({1, 1, size, size}), false);
  if (flex.mode == nn::FlexMode::none) return;
  FLEXNN_CHECK(flex.mode == nn::FlexMode::standard || flex.mode == nn::FlexMode::reverse,
               "HMAX S2: flexible mode '{}' is not supported: expected standard or reverse",
               nn::flex_mode_name(flex.mode));
  FLEXNN_CHECK(flex.sharpness > 0 && std::isfinite(flex.sharpness), "HMAX S2: sharpness must be positive, got {}",
               flex.sharpness);
  const int64_t out = band_size + 2 * (size / 2) - size + 1;
  Tensor t = Tensor::randn({prototypes.size(0), out, out}, gen, flex.threshold_mean, flex.threshold_std);
  threshold = flex.freeze_threshold ? register_buffer("threshold", t) : register_parameter("threshold", t);
}

HmaxS2Band::Terms HmaxS2Band::distance_terms(const Tensor& c1) const {
  FLEXNN_CHECK(c1.dim() == 4 && c1.size(1) == prototypes_.size(1) && c1.size(2) == band_size_ &&
                   c1.size(3) == band_size_,
               "HMAX S2: built for C1 maps [N, {}, {}, {}], found {}", prototypes_.size(1), band_size_, band_size_,
               shape_str(c1.shape()));
  const int64_t pad = prototypes_.size(2) / 2;
  return {.cross = window_conv(c1, prototypes_, pad),
          .patch_sq = window_conv(ops::sum(c1 * c1, {1}, true), ones_, pad),
          .weight_sq = ops::sum(prototypes_ * prototypes_, {1, 2, 3})};
}

Tensor HmaxS2Band::forward(const Tensor& c1) {
  const Terms t = distance_terms(c1);
  const Tensor s2 = ops::hmax_s2(t.cross, t.patch_sq, t.weight_sq, sigma_);
  if (flex_.mode == nn::FlexMode::none) return s2;
  const FlexGate gate = flex_.mode == nn::FlexMode::reverse ? FlexGate::reverse_threshold : FlexGate::threshold;
  const Tensor strongest = ops::max(c1, 1, true).values;  // over orientations: [N, 1, H, W]
  const int64_t size = prototypes_.size(2);
  return ops::flexible_blend(s2, strongest, threshold, gate, flex_.sharpness, {size, 1, size / 2});
}

Tensor HmaxS2Band::maxima(const Tensor& c1) {
  if (flex_.mode != nn::FlexMode::none) return ops::max(forward(c1).flatten(2), 2).values;
  const Terms t = distance_terms(c1);
  return ops::hmax_s2_max(t.cross, t.patch_sq, t.weight_sq, sigma_);
}

HmaxS2::HmaxS2(int64_t size, int64_t prototypes, const std::vector<std::string>& band_names,
               const std::vector<int64_t>& band_sizes, float sigma, const S2Flex& flex, Generator& gen)
    : patch_size(size) {
  FLEXNN_CHECK(size > 0 && prototypes > 0, "HMAX S2: patch size and prototype count must be positive, found {} and {}",
               size, prototypes);
  FLEXNN_CHECK(sigma > 0 && std::isfinite(sigma), "HMAX S2: sigma must be positive, found {}", sigma);
  FLEXNN_CHECK(band_names.size() == band_sizes.size() && !band_names.empty(),
               "HMAX S2: expected one name per C1 band size, found {} names and {} sizes", band_names.size(),
               band_sizes.size());
  const Shape shape{prototypes, kOrientations, size, size};
  weight = register_parameter("weight", nn::init::kaiming_uniform(shape, std::sqrt(5.0), gen));
  for (size_t b = 0; b < band_names.size(); ++b)
    bands.push_back(
        register_module(band_names[b], std::make_shared<HmaxS2Band>(weight, band_sizes[b], sigma, flex, gen)));
}

Tensor HmaxS2::forward(const Tensor&) {
  fail("HMAX S2 (patch size {}) reads all {} C1 bands at once: call c2(bands), not forward", patch_size,
       bands.size());
}

Tensor HmaxS2::c2(const std::vector<Tensor>& c1_bands) {
  FLEXNN_CHECK(c1_bands.size() == bands.size(), "HMAX S2: expected {} C1 bands, found {}", bands.size(),
               c1_bands.size());
  std::vector<Tensor> maxima;
  for (size_t b = 0; b < bands.size(); ++b) {
    const Tensor m = bands[b]->maxima(c1_bands[b]);
    maxima.push_back(m.reshape({m.size(0), 1, m.size(1)}));
  }
  return ops::max(ops::concat(maxima, 1), 1).values;
}

}  // namespace flexnn::models
