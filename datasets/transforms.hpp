// Image transforms. First the operations on one Image: horizontal flip, crop with zero padding,
// resampling with PIL's bilinear or Lanczos-3 filter (the paper upsampled CIFAR-10 to 224 x 224
// with Lanczos, following Evans et al.'s PIL code), per-channel normalisation. Then, in
// transforms::, the per-example Transforms built from them that a DataLoader applies, named after
// torchvision's; their randomness comes from the example's ExampleRandom, so it is reproducible
// by (seed, epoch, index).
#pragma once

#include "datasets/example_random.hpp"
#include "datasets/image.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

namespace flexnn::datasets {

// A per-example transform: changes `image` in place (its shape may change), drawing any
// randomness from `random`. Called from several loader threads at once, so it must not mutate
// shared state.
using Transform = std::function<void(Image& image, ExampleRandom& random)>;

// PIL's resampling filters: the triangle 1 - |x| on [-1, 1] and Lanczos-3,
// sinc(x) sinc(x / 3) on [-3, 3) (sinc(x) = sin(pi x) / (pi x)).
enum class ResizeFilter { Bilinear, Lanczos3 };

// Mirrors every row in place.
void flip_horizontal(Image& image);

// The window of `height` x `width` pixels whose top-left corner is at (top, left) in `image`;
// the window may extend past the image, where it is zero (zero padding).
Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width);

// Where a centred window of `window` pixels starts in `size` pixels: round((size - window) / 2),
// halves to even, as torchvision's center_crop (negative when the window is larger: padding).
int64_t center_offset(int64_t size, int64_t window);

// `image` resampled to `height` x `width` as PIL's Image.resize does it: output pixel o along an
// axis of scale s = in / out is centred on input coordinate (o + 0.5) s; its weights are the
// filter at (k + 0.5 - centre) / max(s, 1) for the input pixels k within the filter's support times
// max(s, 1) (stretched when shrinking, which antialiases), normalised to sum to 1 over the pixels
// inside the image. Horizontally first (along each row), then vertically; an axis whose size is
// unchanged is copied.
Image resize(const Image& image, int64_t height, int64_t width, ResizeFilter filter);

// The window [top, top + window_height) x [left, left + window_width) (inside the output) of
// resize(image, height, width, filter), computing only that window.
Image resize_crop(const Image& image, int64_t height, int64_t width, int64_t top, int64_t left,
                  int64_t window_height, int64_t window_width, ResizeFilter filter);

// The size that resizing the shorter side of a height x width image to `size` gives, the longer
// side scaled in proportion and truncated, as torchvision's Resize(size): {new height, new width}.
std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size);

// (value - mean[c]) / stddev[c] for each channel c.
void normalize(Image& image, std::span<const float> mean, std::span<const float> stddev);

namespace transforms {

// Each transform in turn.
Transform compose(std::vector<Transform> steps);
// Flips with probability p (one uniform draw: flips when it is below p).
Transform random_horizontal_flip(float p = 0.5f);
// torchvision's RandomCrop(size, padding): pads each side with `padding` zeros, then takes a
// size x size window at a uniformly random position (two draws: top, then left).
Transform random_crop(int64_t size, int64_t padding = 0);
// A centred size x size window (zero-padded if the image is smaller).
Transform center_crop(int64_t size);
// Resamples to height x width.
Transform resize(int64_t height, int64_t width, ResizeFilter filter);
// Per-channel normalisation. flexnn's models normalise inside the model, so this is optional.
Transform normalize(std::vector<float> mean, std::vector<float> stddev);

}  // namespace transforms
}  // namespace flexnn::datasets
