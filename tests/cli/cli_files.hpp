// Files for the CLI tests: data sets written in the real formats, CIFAR-10's binary batches (at
// full size, 10 000 records a file, since the catalogue reads the real layout) and Fashion-MNIST's
// IDX files, and readers of the JSON the runs write. Image i of class c has a bright band of rows
// that depends on c over dim noise, and is not left-right symmetric, so a model can learn the
// classes and a horizontal flip changes the image. And the comparison of two checkpoints, and a
// substring count for checking the SVG charts.
#pragma once

#include "engine/io/checkpoint.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace flexnn::testing {

// The byte at (channel c, row y, column x) of example `index` of class `label` in a side x side image.
inline uint8_t band_pixel(uint32_t index, uint32_t label, int c, int y, int x, int side) {
  const uint32_t noise = (index * 2654435761u + static_cast<uint32_t>(c * 977 + y * side + x) * 40503u) >> 24;
  const int band = static_cast<int>(label) * side / 10;
  const bool bright = y >= band && y < band + side / 10 + 1 && x < side * 3 / 4;
  return static_cast<uint8_t>(bright ? 190 + noise % 60 : noise % 50);
}

inline void write_binary(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// data_batch_1..5.bin and test_batch.bin in `dir`, 10 000 records each; record r of file f
// (0: the test batch) has label (r + f) % 10.
inline std::string write_cifar10(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (int f = 0; f <= 5; ++f) {
    std::string bytes;
    bytes.reserve(10000 * 3073);
    for (uint32_t r = 0; r < 10000; ++r) {
      const uint32_t label = (r + static_cast<uint32_t>(f)) % 10;
      bytes.push_back(static_cast<char>(label));
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x)
            bytes.push_back(static_cast<char>(band_pixel(r + 10000 * f, label, c, y, x, 32)));
    }
    write_binary(dir / (f == 0 ? std::string("test_batch.bin") : fmt::format("data_batch_{}.bin", f)), bytes);
  }
  return dir.string();
}

// One synthetic CIFAR-10 per test process (184 MB, written on first use, removed at exit).
inline const std::string& shared_cifar10_dir() {
  static const TempDir dir("cifar10");
  static const std::string path = write_cifar10(dir.path());
  return path;
}

// Writes `preset` as <dir>/<name>.json and points the CLI's preset search at `dir`.
inline void use_preset(const std::filesystem::path& dir, const std::string& name, const nlohmann::json& preset) {
  std::filesystem::create_directories(dir);
  write_binary(dir / (name + ".json"), preset.dump(2));
  REQUIRE(setenv("FLEXNN_PRESETS_DIR", dir.c_str(), 1) == 0);
}

inline void put_be32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

// Fashion-MNIST's four plain IDX files in `dir`: `train` and `test` 28x28 images, image i of class i % 10.
inline std::string write_fmnist(const std::filesystem::path& dir, uint32_t train, uint32_t test) {
  std::filesystem::create_directories(dir);
  for (const auto& [prefix, count] : {std::pair<std::string, uint32_t>{"train", train}, {"t10k", test}}) {
    std::string images, labels;
    for (const uint32_t word : {2051u, count, 28u, 28u}) put_be32(images, word);
    for (const uint32_t word : {2049u, count}) put_be32(labels, word);
    for (uint32_t i = 0; i < count; ++i) {
      labels.push_back(static_cast<char>(i % 10));
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) images.push_back(static_cast<char>(band_pixel(i, i % 10, 0, y, x, 28)));
    }
    write_binary(dir / (prefix + "-images-idx3-ubyte"), images);
    write_binary(dir / (prefix + "-labels-idx1-ubyte"), labels);
  }
  return dir.string();
}

// How many times `what` occurs in `text` (overlapping occurrences counted).
inline size_t count_occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline nlohmann::json read_json(const std::filesystem::path& path) { return nlohmann::json::parse(read_text(path)); }

// One JSON value per line (log.jsonl).
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::vector<nlohmann::json> records;
  std::istringstream lines(read_text(path));
  for (std::string line; std::getline(lines, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

// Whether two safetensors files hold the same tensors (names, order, dtypes, shapes), bit for bit.
inline bool same_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  const TensorFile fa = load_tensors(a), fb = load_tensors(b);
  REQUIRE(!fa.tensors.empty());
  if (fa.tensors.size() != fb.tensors.size()) return false;
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    const auto& [name_a, ta] = fa.tensors[i];
    const auto& [name_b, tb] = fb.tensors[i];
    if (name_a != name_b || ta.dtype() != tb.dtype() || ta.shape() != tb.shape() ||
        std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()) != 0)
      return false;
  }
  return true;
}

}  // namespace flexnn::testing
