// Element types a Tensor can hold. float32 is what the ops compute in; int64 holds indices
// (argmax) and counters (BatchNorm's num_batches_tracked). bf16/fp16 slot in here later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flexnn {

enum class DType { Float32, Int64 };

constexpr std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Float32: return 4;
    case DType::Int64: return 8;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Int64: return "int64";
  }
  return "?";
}

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }

}  // namespace flexnn
