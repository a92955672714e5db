// HMAX's S1 layer: a bank of Gabor filters, 16 sizes x 4 orientations, fixed (never trained), as in
// wmvanvliet/pytorch_hmax (the HMAX the paper used) after Serre et al. 2007. A unit's response is
// the absolute filter response normalised by the local energy of the image under the filter:
// |conv(x, g)| / sqrt(conv(x², ones(size x size))), both zero-padded by size / 2 so that the maps
// keep the image's size. Constants and their sources: docs/hmax.md.
#pragma once

#include "engine/nn/module.hpp"

#include <array>
#include <cstdint>
#include <vector>

namespace flexnn::models {

// One filter scale: its size (odd, in pixels) and the wavelength parameter from which λ follows.
struct GaborScale {
  int64_t size;
  double wavelength;
};

// The 16 scales: sizes 7, 9, ..., 37 with wavelengths 4.0, 3.95, ..., 3.25.
inline constexpr int64_t kS1Scales = 16;
std::array<GaborScale, kS1Scales> s1_scales();
// The orientations in degrees, in channel order: S1, C1 and the S2 prototypes have one channel each.
inline constexpr std::array<double, 4> kGaborOrientations{90.0, -45.0, 0.0, 45.0};
inline constexpr int64_t kOrientations = static_cast<int64_t>(kGaborOrientations.size());
inline constexpr double kGaborAspectRatio = 0.3;  // γ
inline constexpr double kGaborSigmaPerLambda = 0.8;  // σ = 0.8 λ

// One Gabor filter, size x size, row-major: with x the row and y the column offset from the
// centre, θ = orientation + 90°, λ = size * 2 / wavelength, σ = 0.8 λ, γ = 0.3:
// exp(−(x'² + γ² y'²) / (2σ²)) cos(2π x' / λ), x' = x cos θ + y sin θ, y' = −x sin θ + y cos θ;
// zero where sqrt(x² + y²) > size / 2; then minus its mean (over all size² entries) and divided
// by its L2 norm. Computed in double.
std::vector<double> gabor_filter(int64_t size, double wavelength, double orientation_degrees);

// S1 at one scale for images of a given height: [N, 1, H, W] -> [N, 4, H, W] (odd sizes keep
// H x W). Both convolutions run over image rows as channels, x viewed as [N, H, 1, W], with banded
// weights: row (o, r) of the banded Gabor weight holds filter row i at input row r + i - size / 2.
// im2col then builds H * size rows per image instead of size², and the GEMM has 4H output rows
// instead of 4 (the zero bands cost little more than the padding they replace). The filters are
// non-persistent buffers: constants of the construction, not saved in checkpoints.
class GaborS1 : public nn::Module {
 public:
  GaborS1(const GaborScale& scale, int64_t image_height);
  Tensor forward(const Tensor& x) override;

  GaborScale scale;
  Tensor gabor;  // [4, 1, size, size]: the filters

 private:
  int64_t height_;
  Tensor banded_gabor_;   // [4 * H, H, 1, size]
  Tensor banded_energy_;  // [H, H, 1, size]: ones within the window's rows
};

}  // namespace flexnn::models
