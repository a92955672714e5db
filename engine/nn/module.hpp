// nn::Module, the base of every layer and network, in the manner of torch.nn.Module: named
// parameters, buffers and child modules registered in order, PyTorch-style dotted names
// ("features.3.weight"), train/eval mode, and forward() through operator().
#pragma once

#include "engine/tensor.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flexnn::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Parameters (trainable, requires_grad) and buffers (state such as running statistics), with
  // dotted names, this module's first, then each child's in registration order.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  // Everything a checkpoint holds: parameters and buffers (torch's state_dict order).
  NamedTensors state() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter and buffer to the device, in place (handles held elsewhere follow).
  void to(Device device);
  // Where the parameters live (the CPU for a module without any).
  Device device() const;

 protected:
  Tensor register_parameter(std::string name, Tensor value);
  // A buffer is saved in checkpoints unless it is not persistent (a constant derived from the
  // module's construction, as torch's register_buffer(persistent=False)); both follow Module::to.
  Tensor register_buffer(std::string name, Tensor value, bool persistent = true);
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  void collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors& out) const;
  void collect_non_persistent(std::vector<Tensor>& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  NamedTensors non_persistent_buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace flexnn::nn
