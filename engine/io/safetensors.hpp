// Reader and writer for the safetensors file format (the checkpoint format flexnn shares with
// PyTorch): an 8-byte little-endian header length N, N bytes of JSON describing each tensor's
// dtype, shape and byte range, then the raw little-endian data. Knows nothing of flexnn tensors:
// it moves named byte ranges, so the checkpoint code above it stays a thin adapter.
//
//   flexnn::safetensors::write("model.safetensors", {{"fc.weight", DType::F32, {10, 4}, ptr, 160}},
//                              {{"format", "pt"}});
//   auto file = flexnn::safetensors::read("model.safetensors");
//   if (const auto* w = file.find("fc.weight")) std::memcpy(dst, file.data(*w), w->end - w->begin);
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flexnn::safetensors {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; flexnn assumes a little-endian host");

// The element types, named as the safetensors header spells them ("F32", "BF16", ...).
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

std::string_view dtype_name(DType dtype);                 // "F32"
std::size_t dtype_size(DType dtype);                      // bytes per element: F32 -> 4
std::optional<DType> parse_dtype(std::string_view name);  // "F32" -> F32, unknown -> nullopt

// One tensor to write: `nbytes` bytes at `data`, which must equal numel(shape) * dtype_size.
// A 0-dim scalar has an empty shape (one element).
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const std::byte* data;
  std::size_t nbytes;
};

// One tensor of a parsed file; [begin, end) are byte offsets relative to the data section.
struct TensorEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::size_t begin;
  std::size_t end;
};

// A parsed, fully validated file. It owns the bytes; `data(entry)` points into them and stays
// valid while the File lives (also across moves). The data of a tensor may be unaligned when the
// file came from another writer: copy it out with memcpy rather than casting the pointer.
struct File {
  std::vector<TensorEntry> tensors;             // in data-offset order
  std::map<std::string, std::string> metadata;  // the "__metadata__" object, empty if absent
  std::vector<std::byte> bytes;                 // the whole file
  std::size_t data_start;                       // file offset of the data section: 8 + N

  const std::byte* data(const TensorEntry& entry) const;
  const TensorEntry* find(std::string_view name) const;  // nullptr if there is no such tensor
};

// Parses and validates a whole file held in memory; throws flexnn::Error naming `source_name`,
// the tensor and the offending offsets on any inconsistency.
File parse(std::vector<std::byte> bytes, std::string_view source_name);

// Reads the whole file at `path`, then parses it.
File read(const std::filesystem::path& path);

// Writes the tensors, packed in the given order, and the metadata (omitted when empty). The file
// is written to `<path>.tmp-<pid>`, fsynced and renamed over `path`, so `path` always holds either
// its old content or the complete new file. Throws flexnn::Error on invalid input or I/O failure.
void write(const std::filesystem::path& path, const std::vector<TensorView>& tensors,
           const std::map<std::string, std::string>& metadata);

}  // namespace flexnn::safetensors
