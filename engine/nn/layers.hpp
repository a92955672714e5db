// The standard layers, each a thin nn::Module over one functional op, with torch.nn's names,
// defaults and parameter names (weight, bias, running_mean, running_var, num_batches_tracked).
#pragma once

#include "engine/generator.hpp"
#include "engine/nn/module.hpp"
#include "engine/ops.hpp"

namespace flexnn::nn {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, ops::Size2 kernel, ops::Size2 stride = 1, ops::Size2 padding = 0,
         bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  ops::Size2 stride, padding;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

// BatchNorm over channels of [N,C,H,W] (2d) or features of [N,C] (1d).
class BatchNorm : public Module {
 public:
  BatchNorm(int64_t num_features, int64_t input_rank, float eps = 1e-5f, float momentum = 0.1f, bool affine = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  float eps, momentum;

 private:
  int64_t input_rank_;
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = true)
      : BatchNorm(num_features, 4, eps, momentum, affine) {}
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = true)
      : BatchNorm(num_features, 2, eps, momentum, affine) {}
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(ops::Size2 kernel, std::optional<ops::Size2> stride = std::nullopt, ops::Size2 padding = 0,
            bool ceil_mode = false)
      : kernel(kernel), stride(stride), padding(padding), ceil_mode(ceil_mode) {}
  Tensor forward(const Tensor& x) override { return ops::max_pool2d(x, kernel, stride, padding, ceil_mode); }
  ops::Size2 kernel;
  std::optional<ops::Size2> stride;
  ops::Size2 padding;
  bool ceil_mode;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(ops::Size2 kernel, std::optional<ops::Size2> stride = std::nullopt, ops::Size2 padding = 0,
            bool ceil_mode = false, bool count_include_pad = true)
      : kernel(kernel), stride(stride), padding(padding), ceil_mode(ceil_mode), count_include_pad(count_include_pad) {}
  Tensor forward(const Tensor& x) override {
    return ops::avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad);
  }
  ops::Size2 kernel;
  std::optional<ops::Size2> stride;
  ops::Size2 padding;
  bool ceil_mode, count_include_pad;
};

// (x − mean[c]) / std[c] per channel of [N, C, H, W]: input normalisation inside a model, so that
// attacks and data work in [0, 1] pixel space. The constants are configuration, not state: they
// are neither parameters nor buffers.
class Normalize : public Module {
 public:
  Normalize(const std::vector<float>& mean, const std::vector<float>& std);
  Tensor forward(const Tensor& x) override;
  Tensor mean, inv_std;  // [C, 1, 1], non-persistent buffers (the config holds them)
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ops::relu(x); }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ops::sigmoid(x); }
};

class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f, Generator& gen = default_generator()) : p(p), gen_(&gen) {}
  Tensor forward(const Tensor& x) override { return ops::dropout(x, p, is_training(), *gen_); }
  float p;

 private:
  Generator* gen_;
};

class Dropout2d : public Module {
 public:
  explicit Dropout2d(float p = 0.5f, Generator& gen = default_generator()) : p(p), gen_(&gen) {}
  Tensor forward(const Tensor& x) override { return ops::dropout2d(x, p, is_training(), *gen_); }
  float p;

 private:
  Generator* gen_;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  int64_t start_dim, end_dim;
};

// Runs its children in order; they are named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return named_children().size(); }
};

}  // namespace flexnn::nn
