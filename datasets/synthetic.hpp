// A synthetic, separable image-classification problem for demos and tests that must run in
// seconds without data files: each image holds one noisy bar (horizontal, vertical, diagonal or
// anti-diagonal) at a random position; the bar's orientation is the label.
#pragma once

#include "datasets/labelled_images.hpp"
#include "engine/generator.hpp"

namespace flexnn::datasets {

inline constexpr int64_t kBarClasses = 4;

// Images [count, 1, size, size] in [0, 1], labels in [0, kBarClasses).
LabelledImages make_bars(int64_t count, int64_t size, Generator& gen, float noise = 0.1f);

}  // namespace flexnn::datasets
