// Readers for IDX files (the format of MNIST and Fashion-MNIST), gzipped or plain: big-endian
// int32 header fields, then unsigned bytes. Every header field and the exact data length are
// checked; errors name the file, the byte offset and what was expected and found.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace flexnn::datasets {

inline constexpr uint32_t kIdxImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
inline constexpr uint32_t kIdxLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension

struct IdxImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]
};

// An image file: magic 2051, count, rows, cols, then count * rows * cols bytes.
IdxImages read_idx_images(const std::filesystem::path& path);

// A label file: magic 2049, count, then count bytes.
std::vector<uint8_t> read_idx_labels(const std::filesystem::path& path);

}  // namespace flexnn::datasets
