// SGD: validation of the groups and the update: one fused loop per CPU parameter, and one
// multi-tensor kernel over all CUDA parameters of every group. Each parameter's gradient and
// momentum buffer live on the parameter's device.
#include "engine/optim/sgd.hpp"

#include "kernels/cpu/sgd.hpp"
#include "kernels/cuda/sgd.hpp"

#include <unordered_set>

namespace flexnn::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(std::vector<ParamGroup>{{std::move(params), options}}) {}

SGD::SGD(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  size_t count = 0;
  std::unordered_set<const TensorImpl*> seen;
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
      FLEXNN_CHECK(seen.insert(&p.impl()).second, "SGD: a parameter of shape {} appears more than once",
                   shape_str(p.shape()));
    }
    count += g.params.size();
  }
  momentum_buffers_.resize(count);
}

void SGD::step() {
  std::vector<cuda::SgdTensor> on_cuda;
  size_t index = 0;
  for (ParamGroup& group : groups_) {
    const SGDOptions& o = group.options;
    for (Tensor& p : group.params) {
      Tensor& buffer = momentum_buffers_[index++];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      FLEXNN_CHECK(grad.device() == p.device() && grad.shape() == p.shape(),
                   "SGD: parameter {} of shape {} on {} has a gradient of shape {} on {}", index - 1,
                   shape_str(p.shape()), p.device().str(), shape_str(grad.shape()), grad.device().str());
      FLEXNN_CHECK(!buffer.defined() || (buffer.device() == p.device() && buffer.shape() == p.shape()),
                   "SGD: parameter {} of shape {} on {} has a momentum buffer of shape {} on {}", index - 1,
                   shape_str(p.shape()), p.device().str(), shape_str(buffer.shape()), buffer.device().str());
      const bool first = !buffer.defined();
      if (o.momentum != 0.0f && first) buffer = Tensor::empty(p.shape(), DType::Float32, p.device());
      float* momentum_buffer = o.momentum != 0.0f ? buffer.data<float>() : nullptr;
      if (p.device().is_cuda()) {
        on_cuda.push_back({p.data<float>(), grad.data<float>(), momentum_buffer, p.numel(), o.lr, o.momentum,
                           o.weight_decay, o.dampening, o.nesterov, first});
      } else {
        cpu::sgd_update(p.data<float>(), grad.data<float>(), momentum_buffer, p.numel(),
                        {o.lr, o.momentum, o.weight_decay, o.dampening, o.nesterov, first});
      }
    }
  }
  if (!on_cuda.empty()) cuda::sgd_update(on_cuda.data(), static_cast<int64_t>(on_cuda.size()));
}

void SGD::zero_grad() {
  for (ParamGroup& group : groups_)
    for (Tensor& p : group.params) p.set_grad(Tensor());
}

}  // namespace flexnn::optim
