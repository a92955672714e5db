// Tensor: storage, factories, host copies, views and the entry points into autograd.
#include "engine/tensor.hpp"

#include "engine/allocator.hpp"
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cuda/memory.hpp"
#include "kernels/philox.hpp"

#include <cmath>
#include <cstring>

namespace flexnn {

Storage::Storage(std::size_t bytes, Device device)
    : block_(device_allocate(device, bytes)), bytes_(bytes), device_(device) {}

Storage::~Storage() { device_release(device_, block_); }

namespace {

// Copies bytes between any two devices (ordered on the CUDA stream where one side is a device).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    cuda::copy_device_to_device(dst, src, bytes);
  } else if (dst_device.is_cuda()) {
    cuda::copy_host_to_device(dst, src, bytes);
  } else if (src_device.is_cuda()) {
    cuda::copy_device_to_host(dst, src, bytes);
  } else {
    std::memmove(dst, src, bytes);
  }
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) FLEXNN_CHECK(d >= 0, "empty: negative dimension in shape {}", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cuda()) {
    cuda::set_zero(t.raw_data(), t.nbytes());
  } else {
    std::memset(t.raw_data(), 0, t.nbytes());
  }
  return t;
}

Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.0f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, DType::Float32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(float value, Device device) { return full({}, value, device); }

Tensor Tensor::arange(float start, float end, float step, Device device) {
  FLEXNN_CHECK(step != 0.0f, "arange: step must be non-zero");
  const auto n = static_cast<int64_t>(std::max(0.0, std::ceil((static_cast<double>(end) - start) / step)));
  std::vector<float> values(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = start + static_cast<float>(i) * step;
  return from_vector(values, {n}, device);
}

namespace {

// A tensor holding a copy of host values; `factory` names the caller in the error.
template <typename T>
Tensor from_host(const std::vector<T>& values, const Shape& shape, Device device, const char* factory) {
  FLEXNN_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "{}: {} values for shape {} ({} elements)",
               factory, values.size(), shape_str(shape), shape_numel(shape));
  Tensor t = Tensor::empty(shape, dtype_of<T>(), device);
  copy_bytes(t.raw_data(), device, values.data(), kCPU, t.nbytes());
  return t;
}

}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  return from_host(values, shape, device, "from_vector");
}

Tensor Tensor::from_indices(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  return from_host(values, shape, device, "from_indices");
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, float low, float high, Device device) {
  if (device.is_cuda()) return rand(shape, gen, low, high).to(device);  // the same values
  Tensor t = empty(shape);
  const int64_t n = t.numel();
  const uint64_t seed = gen.seed(), offset = gen.reserve(philox::uniform_blocks(n));
  float* out = t.data<float>();
  cpu::parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = low + (high - low) * philox::uniform(seed, offset, i);
  });
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, float mean, float std, Device device) {
  if (device.is_cuda()) return randn(shape, gen, mean, std).to(device);
  Tensor t = empty(shape);
  const int64_t n = t.numel();
  const uint64_t seed = gen.seed(), offset = gen.reserve(philox::normal_blocks(n));
  float* out = t.data<float>();
  cpu::parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = mean + std * philox::normal(seed, offset, i);
  });
  return t;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }

float Tensor::item() const {
  FLEXNN_CHECK(numel() == 1, "item: expected a tensor with one element, found shape {}", shape_str(shape()));
  if (dtype() == DType::Int64) {
    int64_t value = 0;
    copy_bytes(&value, kCPU, raw_data(), device(), sizeof(value));
    return static_cast<float>(value);
  }
  return to_vector()[0];
}

std::vector<float> Tensor::to_vector() const {
  FLEXNN_CHECK(dtype() == DType::Float32, "to_vector: expected a float32 tensor, found {}", dtype_name(dtype()));
  std::vector<float> values(static_cast<std::size_t>(numel()));
  copy_bytes(values.data(), kCPU, raw_data(), device(), nbytes());
  return values;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), device());
  copy_bytes(t.raw_data(), t.device(), raw_data(), device(), nbytes());
  return t;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor t = empty(shape(), dtype(), target);
  copy_bytes(t.raw_data(), target, raw_data(), device(), nbytes());
  return record(t, "to", {*this}, [source = device()](const Tensor& g) -> std::vector<Tensor> { return {g.to(source)}; });
}

void Tensor::move_to_(Device target) {
  if (target == device()) return;
  auto storage = std::make_shared<Storage>(nbytes(), target);
  copy_bytes(storage->data(), target, raw_data(), device(), nbytes());
  impl().storage = std::move(storage);
  impl().offset = 0;
  impl().grad.reset();
}

void Tensor::copy_(const Tensor& src) {
  FLEXNN_CHECK(src.shape() == shape() && src.dtype() == dtype(), "copy_: source {} {} into destination {} {}",
               dtype_name(src.dtype()), shape_str(src.shape()), dtype_name(dtype()), shape_str(shape()));
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

void Tensor::fill_(float value) {
  float* p = data<float>();
  const int64_t n = numel();
  if (device().is_cuda()) {
    cuda::fill(p, n, value);
    return;
  }
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  auto impl = std::make_shared<TensorImpl>(*impl_ptr());
  impl->shape = infer_shape(new_shape, numel(), shape());
  impl->grad.reset();
  impl->grad_fn.reset();
  impl->requires_grad = false;
  Shape old_shape = shape();
  return record(Tensor(std::move(impl)), "reshape", {*this},
                [old_shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(old_shape)}; });
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t start = normalize_dim(start_dim, dim(), "flatten");
  const int64_t end = normalize_dim(end_dim, dim(), "flatten");
  FLEXNN_CHECK(start <= end, "flatten: start_dim {} is after end_dim {}", start_dim, end_dim);
  Shape s(shape().begin(), shape().begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= shape()[d];
  s.push_back(merged);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor& Tensor::requires_grad_(bool enabled) {
  FLEXNN_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (use detach())");
  FLEXNN_CHECK(!enabled || dtype() == DType::Float32, "requires_grad_: only float32 tensors can require grad");
  impl().requires_grad = enabled;
  return *this;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_ptr()->storage;
  impl->offset = impl_ptr()->offset;
  impl->shape = shape();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

void Tensor::backward() const {
  FLEXNN_CHECK(numel() == 1, "backward: a gradient must be given for a non-scalar tensor of shape {}",
               shape_str(shape()));
  run_backward(*this, Tensor::ones(shape(), device()));
}

void Tensor::backward(const Tensor& gradient) const { run_backward(*this, gradient); }

}  // namespace flexnn
