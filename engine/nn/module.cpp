// nn::Module: registration, recursive name collection and mode switching.
#include "engine/nn/module.hpp"

namespace flexnn::nn {

Tensor Module::register_parameter(std::string name, Tensor value) {
  value.requires_grad_(true);
  parameters_.emplace_back(std::move(name), value);
  return value;
}

Tensor Module::register_buffer(std::string name, Tensor value, bool persistent) {
  (persistent ? buffers_ : non_persistent_buffers_).emplace_back(std::move(name), value);
  return value;
}

void Module::collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors& out) const {
  if (parameters)
    for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Module::state() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::collect_non_persistent(std::vector<Tensor>& out) const {
  for (const auto& [name, t] : non_persistent_buffers_) out.push_back(t);
  for (const auto& [name, child] : children_) child->collect_non_persistent(out);
}

void Module::to(Device device) {
  for (auto& [name, t] : state()) t.move_to_(device);
  std::vector<Tensor> constants;
  collect_non_persistent(constants);
  for (Tensor& t : constants) t.move_to_(device);
}

Device Module::device() const {
  const NamedTensors all = state();
  return all.empty() ? kCPU : all.front().second.device();
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

}  // namespace flexnn::nn
