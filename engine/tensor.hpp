// Tensor: a handle (shared, reference-counted) to a contiguous row-major block of elements with a
// shape, a dtype and a device. Views (reshape, flatten, slice along dim 0) share storage.
// Autograd state lives here too: requires_grad, the accumulated grad of a leaf, and the graph node
// (grad_fn) that produced a non-leaf. The functional ops are declared in engine/ops.hpp.
#pragma once

#include "engine/allocator.hpp"
#include "engine/device.hpp"
#include "engine/dtype.hpp"
#include "engine/error.hpp"
#include "engine/shape.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace flexnn {

class Generator;
struct Node;

// A block of memory on a device, freed (returned to the caching allocator) with its last user.
class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return block_.ptr; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  MemoryBlock block_;
  std::size_t bytes_;
  Device device_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::Float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;     // the node that produced this tensor (non-leaf only)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = kCPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = kCPU);
  static Tensor ones(const Shape& shape, Device device = kCPU);
  static Tensor full(const Shape& shape, float value, Device device = kCPU);
  static Tensor arange(float start, float end, float step = 1.0f, Device device = kCPU);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = kCPU);
  // An int64 tensor (class labels, indices).
  static Tensor from_indices(const std::vector<int64_t>& values, const Shape& shape, Device device = kCPU);
  static Tensor scalar(float value, Device device = kCPU);
  // Uniform in [low, high) and normal(mean, std), drawn from the generator's Philox stream (the
  // same values on every device: they are drawn on the host).
  static Tensor rand(const Shape& shape, Generator& gen, float low = 0.0f, float high = 1.0f, Device device = kCPU);
  static Tensor randn(const Shape& shape, Generator& gen, float mean = 0.0f, float std = 1.0f, Device device = kCPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }

  template <typename T> T* data() const {
    FLEXNN_CHECK(dtype() == dtype_of<T>(), "tensor of dtype {} accessed as {}", dtype_name(dtype()),
                 dtype_name(dtype_of<T>()));
    return static_cast<T*>(impl().storage->data()) + impl().offset;
  }
  const void* raw_data() const {
    return static_cast<const char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
  }
  void* raw_data() { return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype()); }

  // The single value of a one-element tensor.
  float item() const;
  // A host copy of the elements (float32 tensors).
  std::vector<float> to_vector() const;
  // A copy in fresh storage, detached from the graph.
  Tensor clone() const;
  // This tensor on another device (itself when already there); differentiable, like torch's to().
  Tensor to(Device device) const;
  // Moves this tensor's data to another device in place, for every handle sharing it (a module's
  // parameters and buffers); drops its gradient.
  void move_to_(Device device);
  // Copies src's elements into this tensor's storage (same shape and dtype, any devices; no autograd).
  void copy_(const Tensor& src);
  // Sets every element (no autograd).
  void fill_(float value);

  // Views sharing storage; differentiable.
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool enabled = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& grad) { impl().grad = grad.impl_; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  // The same data, cut from the graph.
  Tensor detach() const;
  // Back-propagates from this tensor: a scalar uses gradient 1, otherwise pass its gradient.
  void backward() const;
  void backward(const Tensor& gradient) const;

  TensorImpl& impl() const {
    FLEXNN_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace flexnn
