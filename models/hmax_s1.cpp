// HMAX's Gabor filters and the S1 response.
#include "models/hmax_s1.hpp"

#include "engine/ops.hpp"

#include <cmath>
#include <limits>
#include <numbers>

namespace flexnn::models {

std::array<GaborScale, kS1Scales> s1_scales() {
  std::array<GaborScale, kS1Scales> scales{};
  for (int64_t i = 0; i < kS1Scales; ++i) scales[i] = {7 + 2 * i, 4.0 - 0.05 * static_cast<double>(i)};
  return scales;
}

std::vector<double> gabor_filter(int64_t size, double wavelength, double orientation_degrees) {
  FLEXNN_CHECK(size > 0 && wavelength > 0, "gabor_filter: size and wavelength must be positive, found {} and {}",
               size, wavelength);
  const double lambda = static_cast<double>(size) * 2.0 / wavelength;
  const double sigma = kGaborSigmaPerLambda * lambda;
  const double gamma = kGaborAspectRatio;
  const double theta = (orientation_degrees + 90.0) * std::numbers::pi / 180.0;
  const int64_t centre = size / 2;
  std::vector<double> g(static_cast<size_t>(size * size));
  for (int64_t row = 0; row < size; ++row)
    for (int64_t col = 0; col < size; ++col) {
      const double x = static_cast<double>(row - centre), y = static_cast<double>(col - centre);
      const double rx = x * std::cos(theta) + y * std::sin(theta);
      const double ry = -x * std::sin(theta) + y * std::cos(theta);
      const bool inside = std::sqrt(x * x + y * y) <= static_cast<double>(size) / 2.0;
      g[row * size + col] = inside ? std::exp(-(rx * rx + gamma * gamma * ry * ry) / (2 * sigma * sigma)) *
                                         std::cos(2 * std::numbers::pi * rx / lambda)
                                   : 0.0;
    }
  double mean = 0;
  for (double v : g) mean += v;
  mean /= static_cast<double>(g.size());
  double norm = 0;
  for (double& v : g) {
    v -= mean;
    norm += v * v;
  }
  norm = std::sqrt(norm);
  for (double& v : g) v /= norm;
  return g;
}

GaborS1::GaborS1(const GaborScale& s, int64_t image_height) : scale(s), height_(image_height) {
  FLEXNN_CHECK(image_height > 0, "HMAX S1: image height must be positive, found {}", image_height);
  const int64_t size = s.size, pad = size / 2, h = image_height;
  const int64_t orientations = kOrientations;
  std::vector<float> bank;
  for (double orientation : kGaborOrientations)
    for (double v : gabor_filter(size, s.wavelength, orientation)) bank.push_back(static_cast<float>(v));
  gabor = register_buffer("gabor", Tensor::from_vector(bank, {orientations, 1, size, size}), false);
  std::vector<float> banded(static_cast<size_t>(orientations * h * h * size), 0.0f);
  std::vector<float> energy(static_cast<size_t>(h * h * size), 0.0f);
  for (int64_t r = 0; r < h; ++r)
    for (int64_t i = 0; i < size; ++i) {
      const int64_t row = r + i - pad;  // the input row that filter row i meets
      if (row < 0 || row >= h) continue;
      for (int64_t j = 0; j < size; ++j) {
        for (int64_t o = 0; o < orientations; ++o)
          banded[((o * h + r) * h + row) * size + j] = bank[(o * size + i) * size + j];
        energy[(r * h + row) * size + j] = 1.0f;
      }
    }
  banded_gabor_ = register_buffer("banded_gabor", Tensor::from_vector(banded, {orientations * h, h, 1, size}), false);
  banded_energy_ = register_buffer("banded_energy", Tensor::from_vector(energy, {h, h, 1, size}), false);
}

Tensor GaborS1::forward(const Tensor& x) {
  FLEXNN_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == height_,
               "HMAX S1: built for grayscale images [N, 1, {}, W], found {}", height_, shape_str(x.shape()));
  const int64_t n = x.size(0), w = x.size(3);
  const ops::Size2 pad{0, scale.size / 2};
  const Tensor rows = x.reshape({n, height_, 1, w});
  const Tensor response =
      ops::abs(ops::conv2d(rows, banded_gabor_, {}, 1, pad)).reshape({n, kOrientations, height_, w});
  const Tensor energy = ops::conv2d(rows * rows, banded_energy_, {}, 1, pad).reshape({n, 1, height_, w});
  // A window of zeros has energy 0 and response 0: clamping the energy to the smallest normal
  // float gives 0 there (pytorch_hmax sets such norms to 1), with no gradient through the clamp.
  const float floor = std::numeric_limits<float>::min();
  return response / ops::sqrt(ops::clamp(energy, floor, std::numeric_limits<float>::infinity()));
}

}  // namespace flexnn::models
