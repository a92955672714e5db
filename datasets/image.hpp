// Image: one example as float32 planes [C, H, W], the form every image source yields and every
// transform takes and returns (values in [0, 1] until a normalisation).
#pragma once

#include <cstdint>
#include <vector>

namespace flexnn::datasets {

struct Image {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<float> pixels;  // [channels, height, width], row-major

  Image() = default;
  Image(int64_t channels, int64_t height, int64_t width)
      : channels(channels), height(height), width(width), pixels(channels * height * width) {}

  // Sets the shape and sizes the storage to match (keeping its capacity, so a reused Image does not
  // reallocate); the values are left unspecified.
  void reshape(int64_t c, int64_t h, int64_t w) {
    channels = c, height = h, width = w;
    pixels.resize(c * h * w);
  }
  bool same_shape(const Image& other) const {
    return channels == other.channels && height == other.height && width == other.width;
  }
  float* plane(int64_t c) { return pixels.data() + c * height * width; }
  const float* plane(int64_t c) const { return pixels.data() + c * height * width; }
};

}  // namespace flexnn::datasets
