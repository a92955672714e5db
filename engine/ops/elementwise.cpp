// Element-wise ops: unary maps and broadcasting binary arithmetic, with their backward. A
// broadcast operand's gradient is summed back to its shape (sum_to).
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/cuda/elementwise.hpp"

namespace flexnn::ops {
namespace {

Tensor unary(const Tensor& x, UnaryOp op, const char* name, float p0 = 0, float p1 = 0) {
  check_float(x, name, "input");
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  const auto forward = x.device().is_cuda() ? cuda::unary_forward : cpu::unary_forward;
  forward(op, x.data<float>(), y.data<float>(), x.numel(), p0, p1);
  return record(y, name, {x}, [x, y = y.detach(), op, p0, p1](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
    const auto backward = x.device().is_cuda() ? cuda::unary_backward : cpu::unary_backward;
    backward(op, x.data<float>(), y.data<float>(), g.data<float>(), dx.data<float>(), x.numel(), p0, p1);
    return {dx};
  });
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
  }
  return "?";
}

// Output shape and per-operand strides of numpy broadcasting (dimensions aligned from the right).
BroadcastShape broadcast(const Tensor& a, const Tensor& b, const char* op) {
  const size_t rank = std::max(a.shape().size(), b.shape().size());
  BroadcastShape s{Shape(rank), Shape(rank), Shape(rank)};
  int64_t stride_a = 1, stride_b = 1;
  for (size_t k = 0; k < rank; ++k) {
    const size_t d = rank - 1 - k;
    const int64_t da = k < a.shape().size() ? a.shape()[a.shape().size() - 1 - k] : 1;
    const int64_t db = k < b.shape().size() ? b.shape()[b.shape().size() - 1 - k] : 1;
    FLEXNN_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast together", op,
                 shape_str(a.shape()), shape_str(b.shape()));
    s.shape[d] = da == 1 ? db : da;  // 0 broadcast with 1 is 0
    s.a_strides[d] = da == 1 ? 0 : stride_a;
    s.b_strides[d] = db == 1 ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
  }
  return s;
}

Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op) {
  const char* name = binary_name(op);
  check_float(a, name, "first operand");
  check_float(b, name, "second operand");
  const BroadcastShape s = broadcast(a, b, name);
  const Device device = common_device(name, {&a, &b});
  Tensor out = Tensor::empty(s.shape, DType::Float32, device);
  const auto forward = device.is_cuda() ? cuda::binary_forward : cpu::binary_forward;
  forward(op, a.data<float>(), b.data<float>(), out.data<float>(), s);
  return record(out, name, {a, b}, [a, b, op](const Tensor& g) -> std::vector<Tensor> {
    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    switch (op) {
      case BinaryOp::Add:
        return {need_a ? sum_to(g, a.shape()) : Tensor(), need_b ? sum_to(g, b.shape()) : Tensor()};
      case BinaryOp::Sub:
        return {need_a ? sum_to(g, a.shape()) : Tensor(), need_b ? neg(sum_to(g, b.shape())) : Tensor()};
      case BinaryOp::Mul:
        return {need_a ? sum_to(mul(g, b), a.shape()) : Tensor(), need_b ? sum_to(mul(g, a), b.shape()) : Tensor()};
      case BinaryOp::Div:
        return {need_a ? sum_to(div(g, b), a.shape()) : Tensor(),
                need_b ? sum_to(neg(div(mul(g, a), mul(b, b))), b.shape()) : Tensor()};
    }
    return {Tensor(), Tensor()};
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::Add); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::Sub); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::Mul); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::Div); }
Tensor add(const Tensor& a, float b) { return unary(a, UnaryOp::AddScalar, "add", b); }
Tensor mul(const Tensor& a, float b) { return unary(a, UnaryOp::MulScalar, "mul", b); }
Tensor pow(const Tensor& a, float exponent) { return unary(a, UnaryOp::Pow, "pow", exponent); }

Tensor neg(const Tensor& x) { return unary(x, UnaryOp::Neg, "neg"); }
Tensor exp(const Tensor& x) { return unary(x, UnaryOp::Exp, "exp"); }
Tensor log(const Tensor& x) { return unary(x, UnaryOp::Log, "log"); }
Tensor sqrt(const Tensor& x) { return unary(x, UnaryOp::Sqrt, "sqrt"); }
Tensor sigmoid(const Tensor& x) { return unary(x, UnaryOp::Sigmoid, "sigmoid"); }
Tensor relu(const Tensor& x) { return unary(x, UnaryOp::Relu, "relu"); }
Tensor tanh(const Tensor& x) { return unary(x, UnaryOp::Tanh, "tanh"); }
Tensor abs(const Tensor& x) { return unary(x, UnaryOp::Abs, "abs"); }
Tensor sign(const Tensor& x) { return unary(x, UnaryOp::Sign, "sign"); }
Tensor clamp(const Tensor& x, float low, float high) {
  FLEXNN_CHECK(low <= high, "clamp: low {} is greater than high {}", low, high);
  return unary(x, UnaryOp::Clamp, "clamp", low, high);
}

}  // namespace flexnn::ops
