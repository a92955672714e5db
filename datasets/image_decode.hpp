// Decoding image files (JPEG, PNG and the other formats stb_image reads) into 8-bit pixels, and
// those pixels into float planes. Used by the image-folder sources; safe to call from several
// threads at once (stb_image keeps its error reason per thread).
#pragma once

#include "datasets/image.hpp"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace flexnn::datasets {

// Larger images are refused before decoding: a corrupt header must not make the reader allocate
// gigabytes. 2^26 pixels is 8192 x 8192.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// 8-bit pixels, interleaved [height, width, channels].
struct DecodedImage {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes an encoded image held in memory, converted to `channels` (1: grey, as stb_image computes
// luma; 3: RGB, grey replicated). `name` (a file path) names the image in errors, which say why
// stb_image refused it.
DecodedImage decode_image(std::span<const uint8_t> encoded, int64_t channels, std::string_view name);

// Reads and decodes an image file.
DecodedImage read_image(const std::filesystem::path& path, int64_t channels);

// The pixels as planes [C, H, W] with values byte / 255, written to `out` (reshaped).
void to_image(const DecodedImage& decoded, Image& out);

}  // namespace flexnn::datasets
