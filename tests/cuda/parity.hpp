// CUDA-against-CPU parity checks: run the same computation on both devices from the same inputs and
// compare every output and every input gradient, element by element, within a stated tolerance
// |cuda - cpu| <= atol + rtol * |cpu| (the message names the tensor, the index and both values).
#pragma once

#include "engine/tensor.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace flexnn::testing {

struct Tolerance {
  float atol = 1e-5f, rtol = 1e-5f;
};

// Requires the host copies to agree within tol; NaN must match NaN, an infinity the same infinity.
inline void require_close(const std::vector<float>& cuda, const std::vector<float>& cpu, Tolerance tol,
                          const std::string& what) {
  REQUIRE(cuda.size() == cpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const bool both_nan = std::isnan(cuda[i]) && std::isnan(cpu[i]);
    if (both_nan || cuda[i] == cpu[i] || std::abs(cuda[i] - cpu[i]) <= tol.atol + tol.rtol * std::abs(cpu[i])) continue;
    FAIL(what << "[" << i << "]: cuda " << cuda[i] << ", cpu " << cpu[i]);
  }
}

inline void require_close(const Tensor& cuda, const Tensor& cpu, Tolerance tol, const std::string& what) {
  REQUIRE(cuda.device().is_cuda());
  REQUIRE(!cpu.device().is_cuda());
  REQUIRE(cuda.shape() == cpu.shape());
  require_close(cuda.to(kCPU).to_vector(), cpu.to_vector(), tol, what);
}

// Runs f on CPU copies and on CUDA copies of `inputs` (each made a leaf requiring grad where
// `requires_grad` says so), compares the outputs, then back-propagates the same random output
// gradient on both devices and compares each input's gradient.
inline void require_parity(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs, Tolerance forward, Tolerance backward,
                           const std::vector<bool>& requires_grad = {}) {
  std::vector<Tensor> on_cpu, on_cuda;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const bool grad = i < requires_grad.size() ? requires_grad[i] : inputs[i].dtype() == DType::Float32;
    on_cpu.push_back(inputs[i].clone());
    on_cuda.push_back(inputs[i].to(kCUDA).detach());
    if (grad) {
      on_cpu.back().requires_grad_(true);
      on_cuda.back().requires_grad_(true);
    }
  }
  const Tensor y_cpu = f(on_cpu);
  const Tensor y_cuda = f(on_cuda);
  require_close(y_cuda, y_cpu, forward, "output");
  if (!y_cpu.requires_grad()) return;
  std::vector<float> g(static_cast<std::size_t>(y_cpu.numel()));
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.37f * static_cast<float>(i) + 0.1f);
  y_cpu.backward(Tensor::from_vector(g, y_cpu.shape()));
  y_cuda.backward(Tensor::from_vector(g, y_cpu.shape(), kCUDA));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!on_cpu[i].requires_grad()) continue;
    REQUIRE(on_cpu[i].grad().defined());
    REQUIRE(on_cuda[i].grad().defined());
    require_close(on_cuda[i].grad(), on_cpu[i].grad(), backward, "gradient of input " + std::to_string(i));
  }
}

}  // namespace flexnn::testing
