// Checkpoints: a module's parameters and buffers by name in a safetensors file, with a string
// metadata map (the model config lives there). Loading checks every name, dtype and shape
// before touching the module and names the first mismatch; writes are atomic.
#pragma once

#include "engine/nn/module.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace flexnn {

using Metadata = std::map<std::string, std::string>;

struct TensorFile {
  nn::NamedTensors tensors;  // in file order
  Metadata metadata;
};

// Writes named float32/int64 tensors (atomically: temporary file, then rename).
void save_tensors(const std::filesystem::path& path, const nn::NamedTensors& tensors, const Metadata& metadata = {});
// Reads every tensor of a safetensors file (F32 and I64; other dtypes are reported by name).
TensorFile load_tensors(const std::filesystem::path& path);

void save_checkpoint(const nn::Module& module, const std::filesystem::path& path, const Metadata& metadata = {});
// Copies the file's tensors into the module's parameters and buffers; returns the metadata.
// Throws, leaving the module unchanged, on a missing or extra tensor or a dtype/shape mismatch.
Metadata load_checkpoint(nn::Module& module, const std::filesystem::path& path);
// The same from tensors already read (`path` names the file in errors).
void load_state(nn::Module& module, const TensorFile& file, const std::filesystem::path& path);

}  // namespace flexnn
