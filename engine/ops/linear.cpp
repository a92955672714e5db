// Matrix products: matmul of two matrices and the fully connected layer y = x W^T + b, on the
// CPU's deterministic multithreaded GEMM or on cuBLAS, by the operands' device.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/reduce.hpp"
#include "kernels/cuda/gemm.hpp"

namespace flexnn::ops {
namespace {

using Gemm = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                      float, float*, int64_t);

Gemm gemm_on(Device device) { return device.is_cuda() ? Gemm{cuda::gemm} : Gemm{cpu::gemm}; }

// y[r, c] = bias[c] for each of the rows.
void broadcast_rows(const Tensor& bias, float* y, int64_t rows, int64_t cols) {
  const float* b = bias.data<float>();
  if (bias.device().is_cuda()) return cuda::broadcast_bias(b, y, rows, cols, 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = b[c];
}

// out[c] = the sum of g[r, c] over the rows.
void sum_rows(const Tensor& g, float* out, int64_t rows, int64_t cols) {
  if (g.device().is_cuda()) return cuda::bias_gradient(g.data<float>(), out, rows, cols, 1);
  cpu::sum_axis(g.data<float>(), out, {1, rows, cols});
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float(a, "matmul", "first operand");
  check_float(b, "matmul", "second operand");
  FLEXNN_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
               "matmul: expected [M,K] x [K,N], found {} x {}", shape_str(a.shape()), shape_str(b.shape()));
  const Device device = common_device("matmul", {&a, &b});
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  Tensor out = Tensor::empty({m, n}, DType::Float32, device);
  gemm_on(device)(false, false, m, n, k, 1.0f, a.data<float>(), k, b.data<float>(), n, 0.0f, out.data<float>(), n);
  return record(out, "matmul", {a, b}, [a, b, m, n, k](const Tensor& g) -> std::vector<Tensor> {
    const Gemm gemm = gemm_on(g.device());
    Tensor da, db;
    if (a.requires_grad()) {  // dA = G B^T
      da = Tensor::empty({m, k}, DType::Float32, g.device());
      gemm(false, true, m, k, n, 1.0f, g.data<float>(), n, b.data<float>(), n, 0.0f, da.data<float>(), k);
    }
    if (b.requires_grad()) {  // dB = A^T G
      db = Tensor::empty({k, n}, DType::Float32, g.device());
      gemm(true, false, k, n, m, 1.0f, a.data<float>(), k, g.data<float>(), n, 0.0f, db.data<float>(), n);
    }
    return {da, db};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float(x, "linear", "input");
  check_float(weight, "linear", "weight");
  FLEXNN_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
               "linear: input {} does not match weight {} (expected input [N, {}])", shape_str(x.shape()),
               shape_str(weight.shape()), weight.dim() == 2 ? weight.size(1) : -1);
  const int64_t batch = x.size(0), in = x.size(1), out_features = weight.size(0);
  if (bias.defined()) {
    check_float(bias, "linear", "bias");
    FLEXNN_CHECK(bias.shape() == Shape{out_features}, "linear: bias {} does not match weight {}",
                 shape_str(bias.shape()), shape_str(weight.shape()));
  }
  const Device device = common_device("linear", {&x, &weight, &bias});
  Tensor out = Tensor::empty({batch, out_features}, DType::Float32, device);
  float* y = out.data<float>();
  if (bias.defined()) broadcast_rows(bias, y, batch, out_features);  // y = 1 b^T, then y += x W^T
  gemm_on(device)(false, true, batch, out_features, in, 1.0f, x.data<float>(), in, weight.data<float>(), in,
                  bias.defined() ? 1.0f : 0.0f, y, out_features);
  return record(out, "linear", {x, weight, bias},
                [x, weight, bias, batch, in, out_features](const Tensor& g) -> std::vector<Tensor> {
                  const Gemm gemm = gemm_on(g.device());
                  Tensor dx, dw, db;
                  if (x.requires_grad()) {  // dX = G W
                    dx = Tensor::empty({batch, in}, DType::Float32, g.device());
                    gemm(false, false, batch, in, out_features, 1.0f, g.data<float>(), out_features,
                         weight.data<float>(), in, 0.0f, dx.data<float>(), in);
                  }
                  if (weight.requires_grad()) {  // dW = G^T X
                    dw = Tensor::empty({out_features, in}, DType::Float32, g.device());
                    gemm(true, false, out_features, in, batch, 1.0f, g.data<float>(), out_features, x.data<float>(),
                         in, 0.0f, dw.data<float>(), in);
                  }
                  if (bias.defined() && bias.requires_grad()) {  // db = column sums of G
                    db = Tensor::empty({out_features}, DType::Float32, g.device());
                    sum_rows(g, db.data<float>(), batch, out_features);
                  }
                  return {dx, dw, db};
                });
}

}  // namespace flexnn::ops
