// SGD: validation of the groups and the update, one fused loop per parameter.
#include "engine/optim/sgd.hpp"

#include "kernels/cpu/sgd.hpp"

namespace flexnn::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(std::vector<ParamGroup>{{std::move(params), options}}) {}

SGD::SGD(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  size_t count = 0;
  for (const ParamGroup& g : groups_) {
    const SGDOptions& o = g.options;
    FLEXNN_CHECK(o.lr >= 0 && o.momentum >= 0 && o.weight_decay >= 0,
                 "SGD: lr, momentum and weight_decay must be non-negative, found {}, {}, {}", o.lr, o.momentum,
                 o.weight_decay);
    FLEXNN_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
                 "SGD: nesterov needs momentum > 0 and dampening 0");
    for (const Tensor& p : g.params) {
      FLEXNN_CHECK(p.defined() && p.dtype() == DType::Float32 && p.is_leaf(),
                   "SGD: every parameter must be a defined float32 leaf tensor");
    }
    count += g.params.size();
  }
  momentum_buffers_.resize(count);
}

void SGD::step() {
  size_t index = 0;
  for (ParamGroup& group : groups_) {
    const SGDOptions& o = group.options;
    for (Tensor& p : group.params) {
      Tensor& buffer = momentum_buffers_[index++];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      const bool first = !buffer.defined();
      if (o.momentum != 0.0f && first) buffer = Tensor::empty(p.shape(), DType::Float32, p.device());
      cpu::sgd_update(p.data<float>(), grad.data<float>(), o.momentum != 0.0f ? buffer.data<float>() : nullptr,
                      p.numel(), {o.lr, o.momentum, o.weight_decay, o.dampening, o.nesterov, first});
    }
  }
}

void SGD::zero_grad() {
  for (ParamGroup& group : groups_)
    for (Tensor& p : group.params) p.set_grad(Tensor());
}

}  // namespace flexnn::optim
