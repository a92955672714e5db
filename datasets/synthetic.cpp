// Bars: a length-5 bar drawn through a random centre at one of four orientations, plus uniform noise.
#include "datasets/synthetic.hpp"

#include <algorithm>

namespace flexnn::datasets {

LabelledImages make_bars(int64_t count, int64_t size, Generator& gen, float noise) {
  FLEXNN_CHECK(count > 0 && size >= 7, "make_bars: need count > 0 and size >= 7, found {} and {}", count, size);
  constexpr int64_t kHalf = 2;  // the bar spans centre ± 2 pixels
  static constexpr int64_t kStep[kBarClasses][2] = {{0, 1}, {1, 0}, {1, 1}, {1, -1}};
  Tensor images = Tensor::rand({count, 1, size, size}, gen, 0.0f, noise);
  std::vector<int64_t> labels(count);
  const std::vector<float> draws = gen.uniform(3 * count);
  float* pixels = images.data<float>();
  for (int64_t n = 0; n < count; ++n) {
    const auto label = std::min<int64_t>(kBarClasses - 1, static_cast<int64_t>(draws[3 * n] * kBarClasses));
    const int64_t span = size - 2 * kHalf;
    const int64_t row = kHalf + std::min<int64_t>(span - 1, static_cast<int64_t>(draws[3 * n + 1] * span));
    const int64_t col = kHalf + std::min<int64_t>(span - 1, static_cast<int64_t>(draws[3 * n + 2] * span));
    for (int64_t t = -kHalf; t <= kHalf; ++t)
      pixels[(n * size + row + t * kStep[label][0]) * size + col + t * kStep[label][1]] = 1.0f;
    labels[n] = label;
  }
  return {images, Tensor::from_indices(labels, {count})};
}

}  // namespace flexnn::datasets
