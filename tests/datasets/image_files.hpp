// Test helpers that write image files in the real formats (PNG and JPEG through stb_image_write)
// and small, position-dependent test images.
#pragma once

#include <stb/stb_image_write.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace flexnn::testing {

// An 8-bit image, interleaved [height, width, channels].
struct Pixels {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> bytes;
};

// Distinct bytes for every (row, column, channel), varied by `salt`.
inline Pixels pattern_pixels(int height, int width, int channels, unsigned salt = 0) {
  Pixels p{height, width, channels, std::vector<uint8_t>(static_cast<size_t>(height) * width * channels)};
  for (size_t i = 0; i < p.bytes.size(); ++i) p.bytes[i] = static_cast<uint8_t>(i * 37 + salt * 71 + i / 7);
  return p;
}

// A smooth image (JPEG keeps it within a few levels).
inline Pixels smooth_pixels(int height, int width, unsigned salt = 0) {
  Pixels p{height, width, 3, std::vector<uint8_t>(static_cast<size_t>(height) * width * 3)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        p.bytes[(y * width + x) * 3 + c] = static_cast<uint8_t>(40 + (salt * 13 + y * 3 + x * 2 + c * 30) % 160);
      }
    }
  }
  return p;
}

inline void write_png(const std::filesystem::path& path, const Pixels& p) {
  std::filesystem::create_directories(path.parent_path());
  REQUIRE(stbi_write_png(path.c_str(), p.width, p.height, p.channels, p.bytes.data(), p.width * p.channels) != 0);
}

inline void write_jpg(const std::filesystem::path& path, const Pixels& p, int quality = 95) {
  std::filesystem::create_directories(path.parent_path());
  REQUIRE(stbi_write_jpg(path.c_str(), p.width, p.height, p.channels, p.bytes.data(), quality) != 0);
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace flexnn::testing
