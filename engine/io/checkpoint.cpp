// Checkpoint adapter between Tensors and the safetensors reader/writer.
#include "engine/io/checkpoint.hpp"

#include "engine/io/safetensors.hpp"

#include <cstring>
#include <unordered_map>

namespace flexnn {
namespace {

safetensors::DType to_file_dtype(DType dtype) {
  switch (dtype) {
    case DType::Float32: return safetensors::DType::F32;
    case DType::Int64: return safetensors::DType::I64;
  }
  fail("checkpoint: dtype {} has no safetensors name", dtype_name(dtype));
}

DType from_file_dtype(safetensors::DType dtype, const std::string& name, const std::filesystem::path& path) {
  switch (dtype) {
    case safetensors::DType::F32: return DType::Float32;
    case safetensors::DType::I64: return DType::Int64;
    default:
      fail("checkpoint '{}': tensor '{}' has dtype {}; flexnn reads F32 and I64", path.string(), name,
           safetensors::dtype_name(dtype));
  }
}

}  // namespace

void save_tensors(const std::filesystem::path& path, const nn::NamedTensors& tensors, const Metadata& metadata) {
  std::vector<safetensors::TensorView> views;
  std::vector<Tensor> host_copies;  // of tensors on a device, alive until written
  views.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    FLEXNN_CHECK(t.defined(), "checkpoint: tensor '{}' is undefined", name);
    const Tensor& host = t.device().is_cuda() ? host_copies.emplace_back(t.detach().to(kCPU)) : t;
    views.push_back({name, to_file_dtype(t.dtype()), t.shape(), static_cast<const std::byte*>(host.raw_data()), t.nbytes()});
  }
  safetensors::write(path, views, metadata);
}

TensorFile load_tensors(const std::filesystem::path& path) {
  const safetensors::File file = safetensors::read(path);
  TensorFile out{{}, file.metadata};
  for (const safetensors::TensorEntry& entry : file.tensors) {
    Tensor t = Tensor::empty(entry.shape, from_file_dtype(entry.dtype, entry.name, path));
    std::memcpy(t.raw_data(), file.data(entry), t.nbytes());
    out.tensors.emplace_back(entry.name, t);
  }
  return out;
}

void save_checkpoint(const nn::Module& module, const std::filesystem::path& path, const Metadata& metadata) {
  save_tensors(path, module.state(), metadata);
}

Metadata load_checkpoint(nn::Module& module, const std::filesystem::path& path) {
  const TensorFile file = load_tensors(path);
  load_state(module, file, path);
  return file.metadata;
}

void load_state(nn::Module& module, const TensorFile& file, const std::filesystem::path& path) {
  std::unordered_map<std::string, Tensor> by_name;
  for (auto& [name, t] : file.tensors) by_name.emplace(name, t);
  const nn::NamedTensors state = module.state();
  for (const auto& [name, target] : state) {
    auto found = by_name.find(name);
    FLEXNN_CHECK(found != by_name.end(), "checkpoint '{}': tensor '{}' is missing (the model expects {} {})",
                 path.string(), name, dtype_name(target.dtype()), shape_str(target.shape()));
    const Tensor& source = found->second;
    FLEXNN_CHECK(source.dtype() == target.dtype() && source.shape() == target.shape(),
                 "checkpoint '{}': tensor '{}' is {} {} but the model expects {} {}", path.string(), name,
                 dtype_name(source.dtype()), shape_str(source.shape()), dtype_name(target.dtype()),
                 shape_str(target.shape()));
    by_name.erase(found);
  }
  for (const auto& [name, t] : file.tensors) {  // what is left in by_name is not part of the model
    FLEXNN_CHECK(by_name.count(name) == 0, "checkpoint '{}': tensor '{}' is not part of the model ({} unexpected)",
                 path.string(), name, by_name.size());
  }
  std::unordered_map<std::string, const Tensor*> sources;
  for (const auto& [name, t] : file.tensors) sources.emplace(name, &t);
  for (const auto& [name, target] : state) Tensor(target).copy_(*sources.at(name));
}

}  // namespace flexnn
