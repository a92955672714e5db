// APGD: the checkpoint schedule, the host-side step-size control, and the attack loop on the
// device (momentum step, projection, per-example bookkeeping by exact row selection).
#include "attacks/apgd.hpp"

#include "attacks/restarts.hpp"
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"

#include <algorithm>
#include <cmath>

namespace flexnn::attacks {
namespace {

// APGD's start: a random point on the sphere of the ball's norm and radius around x, clamped to [0, 1].
Tensor sphere_start(const EpsBall& ball, Generator& gen) {
  NoGradGuard no_grad;
  const Tensor& x = ball.center();
  Shape per_example(static_cast<size_t>(x.dim()), 1);
  per_example[0] = x.size(0);
  if (ball.norm() == Norm::linf) {
    const Tensor t = Tensor::rand(x.shape(), gen, -1.0f, 1.0f, x.device());
    const Tensor largest = ops::max(ops::abs(t.flatten(1)), 1).values.reshape(per_example);
    return ops::clamp(x + t / largest * ball.radius(), 0.0f, 1.0f);
  }
  const Tensor t = Tensor::randn(x.shape(), gen, 0.0f, 1.0f, x.device());
  return ops::clamp(x + t / (example_norms(t) + 1e-12f) * ball.radius(), 0.0f, 1.0f);
}

std::vector<uint8_t> negated(const std::vector<uint8_t>& v) {
  std::vector<uint8_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = !v[i];
  return out;
}

}  // namespace

std::vector<int> apgd_checkpoints(int iterations) {
  FLEXNN_CHECK(iterations >= 1, "apgd: expected at least 1 iteration, found {}", iterations);
  // p_j in hundredths, so that w_j = ⌈p_j·N⌉ is computed exactly.
  std::vector<int> w;
  int64_t p = 22, gap = 22;
  while (p <= 100) {
    const int checkpoint = static_cast<int>((p * iterations + 99) / 100);
    if (checkpoint > iterations) break;
    if (w.empty() || checkpoint > w.back()) w.push_back(checkpoint);
    gap = std::max<int64_t>(gap - 3, 6);
    p += gap;
  }
  return w;
}

ApgdStepControl::ApgdStepControl(std::span<const float> initial_loss, int iterations, float initial_step, float rho)
    : checkpoints_(apgd_checkpoints(iterations)),
      rho_(rho),
      step_(initial_loss.size(), initial_step),
      best_(initial_loss.begin(), initial_loss.end()),
      previous_(best_),
      best_at_last_checkpoint_(best_),
      increases_(initial_loss.size(), 0),
      halved_at_last_checkpoint_(initial_loss.size(), 0) {
  FLEXNN_CHECK(initial_step > 0 && std::isfinite(initial_step), "apgd: the initial step must be positive, found {}",
               initial_step);
  FLEXNN_CHECK(rho > 0 && rho <= 1, "apgd: rho must be in (0, 1], found {}", rho);
}

ApgdStepControl::Update ApgdStepControl::update(std::span<const float> loss) {
  FLEXNN_CHECK(loss.size() == best_.size(), "apgd: {} losses for {} examples", loss.size(), best_.size());
  ++done_;
  Update u{std::vector<uint8_t>(loss.size(), 0), std::vector<uint8_t>(loss.size(), 0)};
  for (size_t i = 0; i < loss.size(); ++i) {
    increases_[i] += loss[i] > previous_[i];
    previous_[i] = loss[i];
    if (loss[i] > best_[i]) best_[i] = loss[i], u.improved[i] = 1;
  }
  if (next_checkpoint_ >= checkpoints_.size() || done_ != checkpoints_[next_checkpoint_]) return u;
  const int interval = done_ - last_checkpoint_;
  for (size_t i = 0; i < loss.size(); ++i) {
    const bool oscillating = static_cast<float>(increases_[i]) < rho_ * static_cast<float>(interval);
    const bool stalled = !halved_at_last_checkpoint_[i] && best_[i] == best_at_last_checkpoint_[i];
    u.halved[i] = oscillating || stalled;
    if (u.halved[i]) step_[i] /= 2, previous_[i] = best_[i];  // the next step starts from x_max
    halved_at_last_checkpoint_[i] = u.halved[i];
    best_at_last_checkpoint_[i] = best_[i];
    increases_[i] = 0;
  }
  last_checkpoint_ = done_;
  ++next_checkpoint_;
  return u;
}

AttackBatch apgd(nn::Module& model, const Tensor& x, const Tensor& labels, const ThreatModel& threat,
                 const ApgdOptions& options, const GradientOptions& gradient, Generator& gen) {
  FLEXNN_CHECK(options.iterations >= 1 && options.restarts >= 1,
               "apgd: expected iterations >= 1 and restarts >= 1, found {} and {}", options.iterations,
               options.restarts);
  FLEXNN_CHECK(options.momentum >= 0 && options.momentum <= 1, "apgd: the momentum must be in [0, 1], found {}",
               options.momentum);
  const EpsBall ball(x, threat);
  const std::vector<int64_t> y = host_labels(labels);
  FLEXNN_CHECK(static_cast<int64_t>(y.size()) == x.size(0), "apgd: {} labels for inputs {}", y.size(),
               shape_str(x.shape()));
  Shape per_example(static_cast<size_t>(x.dim()), 1);
  per_example[0] = x.size(0);
  AttackBatch out;
  WorstOfRestarts worst;
  for (int restart = 0; restart < options.restarts; ++restart) {
    Tensor x_cur = sphere_start(ball, gen), x_prev = x_cur;
    LossGradient lg = input_gradient(model, x_cur, y, gradient);
    if (restart == 0) out.zero_gradient_examples = zero_gradient_examples(lg);
    Tensor grad = lg.grad, grad_best = grad, x_best = x_cur, x_best_adv = x_cur;
    std::vector<uint8_t> broken = negated(lg.values.correct);
    ApgdStepControl control(lg.values.loss, options.iterations, options.initial_step, options.rho);
    for (int k = 0; k < options.iterations; ++k) {
      {
        NoGradGuard no_grad;
        const Tensor step = Tensor::from_vector(control.step(), per_example, x.device()) * ball.radius();
        const Tensor z = ball.project(ball.ascent_step(x_cur, grad, step));
        const float a = k > 0 ? options.momentum : 1.0f;
        const Tensor next = ball.project(x_cur + (z - x_cur) * a + (x_cur - x_prev) * (1.0f - a));
        x_prev = x_cur;
        x_cur = next;
      }
      lg = input_gradient(model, x_cur, y, gradient);
      grad = lg.grad;
      const std::vector<uint8_t> misclassified = negated(lg.values.correct);
      x_best_adv = select_examples(misclassified, x_cur, x_best_adv);
      for (size_t i = 0; i < y.size(); ++i) broken[i] = broken[i] || misclassified[i];
      const ApgdStepControl::Update u = control.update(lg.values.loss);
      x_best = select_examples(u.improved, x_cur, x_best);
      grad_best = select_examples(u.improved, grad, grad_best);
      x_cur = select_examples(u.halved, x_best, x_cur);
      grad = select_examples(u.halved, grad_best, grad);
    }
    worst.add(select_examples(broken, x_best_adv, x_best), broken, control.best_loss());
  }
  out.adversarial = worst.adversarial();
  return out;
}

}  // namespace flexnn::attacks
