// The image operations and the Transforms built from them. Resampling is separable: per axis, a
// table of taps (first input pixel, count, normalised weights) for each output pixel, computed in
// double as PIL computes it, then applied in float along rows and then along columns.
#include "datasets/transforms.hpp"

#include "engine/error.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace flexnn::datasets {
namespace {

double filter_support(ResizeFilter filter) { return filter == ResizeFilter::Bilinear ? 1.0 : 3.0; }

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

double filter_weight(ResizeFilter filter, double x) {
  if (filter == ResizeFilter::Bilinear) {
    x = std::abs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
  }
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
}

// The taps of output pixels [begin, end) of an axis resampled from `in` to `out` pixels.
struct Taps {
  int64_t stride = 0;                 // weight slots per output pixel
  std::vector<int64_t> first, count;  // per output pixel
  std::vector<float> weights;         // [output pixel, stride]

  int64_t lowest() const { return first.front(); }
  int64_t highest() const {  // one past the last input pixel used
    int64_t end = 0;
    for (size_t o = 0; o < first.size(); ++o) end = std::max(end, first[o] + count[o]);
    return end;
  }
};

Taps make_taps(int64_t in, int64_t out, int64_t begin, int64_t end, ResizeFilter filter) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double stretch = std::max(scale, 1.0);
  const double support = filter_support(filter) * stretch;
  Taps taps;
  taps.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.weights.assign((end - begin) * taps.stride, 0.0f);
  std::vector<double> w(taps.stride);
  for (int64_t o = begin; o < end; ++o) {
    const double centre = (static_cast<double>(o) + 0.5) * scale;
    // PIL's rounding: the C cast truncates towards zero.
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(centre - support + 0.5));
    const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(centre + support + 0.5));
    const int64_t n = hi - lo;
    double total = 0.0;
    for (int64_t k = 0; k < n; ++k) total += w[k] = filter_weight(filter, (static_cast<double>(lo + k) - centre + 0.5) / stretch);
    float* dst = taps.weights.data() + (o - begin) * taps.stride;
    for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<float>(total != 0.0 ? w[k] / total : w[k]);
    taps.first.push_back(lo);
    taps.count.push_back(n);
  }
  return taps;
}

void check_size(int64_t height, int64_t width, const char* what) {
  FLEXNN_CHECK(height >= 1 && width >= 1, "{}: the size must be positive, got {}x{}", what, height, width);
}

}  // namespace

void flip_horizontal(Image& image) {
  for (int64_t row = 0; row < image.channels * image.height; ++row) {
    float* begin = image.pixels.data() + row * image.width;
    std::reverse(begin, begin + image.width);
  }
}

Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_size(height, width, "crop");
  Image out(image.channels, height, width);  // zeros
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min(width, image.width - left);
  const int64_t y0 = std::max<int64_t>(0, -top), y1 = std::min(height, image.height - top);
  if (x0 >= x1) return out;
  for (int64_t c = 0; c < image.channels; ++c) {
    for (int64_t y = y0; y < y1; ++y) {
      const float* src = image.plane(c) + (top + y) * image.width + left;
      std::copy(src + x0, src + x1, out.plane(c) + y * width + x0);
    }
  }
  return out;
}

int64_t center_offset(int64_t size, int64_t window) {
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(size - window) / 2.0));
}

Image resize(const Image& image, int64_t height, int64_t width, ResizeFilter filter) {
  return resize_crop(image, height, width, 0, 0, height, width, filter);
}

Image resize_crop(const Image& image, int64_t height, int64_t width, int64_t top, int64_t left,
                  int64_t window_height, int64_t window_width, ResizeFilter filter) {
  check_size(height, width, "resize");
  check_size(image.height, image.width, "resize (the input image)");
  FLEXNN_CHECK(top >= 0 && left >= 0 && window_height >= 1 && window_width >= 1 && top + window_height <= height &&
                   left + window_width <= width,
               "resize_crop: the window {}x{} at ({}, {}) is not inside the {}x{} output", window_height,
               window_width, top, left, height, width);
  const int64_t channels = image.channels;
  // Horizontally: the input rows the window's output rows use, each resampled to the window's columns.
  const bool same_height = image.height == height, same_width = image.width == width;
  Taps rows;
  int64_t row0 = top, row1 = top + window_height;
  if (!same_height) {
    rows = make_taps(image.height, height, top, top + window_height, filter);
    row0 = rows.lowest(), row1 = rows.highest();
  }
  Image across(channels, row1 - row0, window_width);
  if (same_width) {
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t r = row0; r < row1; ++r) {
        const float* src = image.plane(c) + r * image.width + left;
        std::copy(src, src + window_width, across.plane(c) + (r - row0) * window_width);
      }
    }
  } else {
    const Taps cols = make_taps(image.width, width, left, left + window_width, filter);
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t r = row0; r < row1; ++r) {
        const float* src = image.plane(c) + r * image.width;
        float* dst = across.plane(c) + (r - row0) * window_width;
        for (int64_t x = 0; x < window_width; ++x) {
          const float* w = cols.weights.data() + x * cols.stride;
          const float* s = src + cols.first[x];
          float sum = 0.0f;
          for (int64_t k = 0; k < cols.count[x]; ++k) sum += w[k] * s[k];
          dst[x] = sum;
        }
      }
    }
  }
  if (same_height) return across;
  // Vertically: each output row a weighted sum of whole rows (vectorises along the row).
  Image out(channels, window_height, window_width);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t y = 0; y < window_height; ++y) {
      float* dst = out.plane(c) + y * window_width;
      const float* w = rows.weights.data() + y * rows.stride;
      for (int64_t k = 0; k < rows.count[y]; ++k) {
        const float* src = across.plane(c) + (rows.first[y] + k - row0) * window_width;
        const float weight = w[k];
        for (int64_t x = 0; x < window_width; ++x) dst[x] += weight * src[x];
      }
    }
  }
  return out;
}

std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size) {
  check_size(height, width, "shorter_side_size");
  FLEXNN_CHECK(size >= 1, "shorter_side_size: the size must be positive, got {}", size);
  if (height <= width) return {size, width * size / height};
  return {height * size / width, size};
}

void normalize(Image& image, std::span<const float> mean, std::span<const float> stddev) {
  FLEXNN_CHECK(static_cast<int64_t>(mean.size()) == image.channels && static_cast<int64_t>(stddev.size()) == image.channels,
               "normalize: {} means and {} standard deviations for an image of {} channels", mean.size(), stddev.size(),
               image.channels);
  const int64_t area = image.height * image.width;
  for (int64_t c = 0; c < image.channels; ++c) {
    FLEXNN_CHECK(stddev[c] > 0.0f, "normalize: the standard deviation of channel {} must be positive, got {}", c,
                 stddev[c]);
    const float m = mean[c], s = stddev[c];
    float* p = image.plane(c);
    for (int64_t i = 0; i < area; ++i) p[i] = (p[i] - m) / s;
  }
}

namespace transforms {

Transform compose(std::vector<Transform> steps) {
  for (size_t i = 0; i < steps.size(); ++i) FLEXNN_CHECK(steps[i] != nullptr, "compose: transform {} is empty", i);
  return [steps = std::move(steps)](Image& image, ExampleRandom& random) {
    for (const Transform& step : steps) step(image, random);
  };
}

Transform random_horizontal_flip(float p) {
  FLEXNN_CHECK(p >= 0.0f && p <= 1.0f, "random_horizontal_flip: p must be in [0, 1], got {}", p);
  return [p](Image& image, ExampleRandom& random) {
    if (random.uniform() < p) flip_horizontal(image);
  };
}

Transform random_crop(int64_t size, int64_t padding) {
  FLEXNN_CHECK(size >= 1 && padding >= 0, "random_crop: size must be positive and padding >= 0, got {} and {}", size,
               padding);
  return [size, padding](Image& image, ExampleRandom& random) {
    const int64_t height = image.height + 2 * padding, width = image.width + 2 * padding;
    FLEXNN_CHECK(height >= size && width >= size,
                 "random_crop: a {}x{} image padded by {} is {}x{}, smaller than the {}x{} crop", image.height,
                 image.width, padding, height, width, size, size);
    const int64_t top = random.below(height - size + 1) - padding;
    const int64_t left = random.below(width - size + 1) - padding;
    image = crop(image, top, left, size, size);
  };
}

Transform center_crop(int64_t size) {
  FLEXNN_CHECK(size >= 1, "center_crop: size must be positive, got {}", size);
  return [size](Image& image, ExampleRandom&) {
    image = crop(image, center_offset(image.height, size), center_offset(image.width, size), size, size);
  };
}

Transform resize(int64_t height, int64_t width, ResizeFilter filter) {
  check_size(height, width, "transforms::resize");
  return [=](Image& image, ExampleRandom&) { image = datasets::resize(image, height, width, filter); };
}

Transform normalize(std::vector<float> mean, std::vector<float> stddev) {
  FLEXNN_CHECK(mean.size() == stddev.size() && !mean.empty(),
               "transforms::normalize: {} means and {} standard deviations", mean.size(), stddev.size());
  return [mean = std::move(mean), stddev = std::move(stddev)](Image& image, ExampleRandom&) {
    datasets::normalize(image, mean, stddev);
  };
}

}  // namespace transforms
}  // namespace flexnn::datasets
