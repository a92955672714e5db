// PGD: random start, signed (or normalised) gradient steps, projection and clamp; restarts.
#include "attacks/pgd.hpp"

#include "attacks/restarts.hpp"

#include <cmath>

namespace flexnn::attacks {

AttackBatch pgd(nn::Module& model, const Tensor& x, const Tensor& labels, const ThreatModel& threat,
                const PgdOptions& options, const GradientOptions& gradient, Generator& gen) {
  FLEXNN_CHECK(options.steps >= 0 && options.restarts >= 1,
               "pgd: expected steps >= 0 and restarts >= 1, found {} steps and {} restarts", options.steps,
               options.restarts);
  FLEXNN_CHECK(options.step_size >= 0 && std::isfinite(options.step_size),
               "pgd: the step size must be a non-negative number, found {}", options.step_size);
  const EpsBall ball(x, threat);
  const std::vector<int64_t> y = host_labels(labels);
  FLEXNN_CHECK(static_cast<int64_t>(y.size()) == x.size(0), "pgd: {} labels for inputs {}", y.size(),
               shape_str(x.shape()));
  const std::vector<float> step_values = threat.pixel(options.step_size);
  const Tensor step =
      Tensor::from_vector(step_values, {static_cast<int64_t>(step_values.size()), 1, 1}, x.device());
  AttackBatch out;
  WorstOfRestarts worst;
  for (int restart = 0; restart < options.restarts; ++restart) {
    Tensor x_adv = options.random_start ? ball.uniform_start(gen) : ball.center();
    for (int s = 0; s < options.steps; ++s) {
      const LossGradient g = input_gradient(model, x_adv, y, gradient);
      if (restart == 0 && s == 0) out.zero_gradient_examples = zero_gradient_examples(g);
      x_adv = ball.project(ball.ascent_step(x_adv, g.grad, step));
    }
    if (options.steps == 0) x_adv = ball.project(x_adv);
    if (options.restarts == 1) {
      out.adversarial = x_adv;
      return out;
    }
    const LossValues v = verdicts(host_logits(model, x_adv), y);
    std::vector<uint8_t> broken(y.size());
    std::vector<float> score(y.size());
    for (size_t i = 0; i < y.size(); ++i) broken[i] = !v.correct[i], score[i] = -v.margin[i];
    worst.add(x_adv, broken, score);
  }
  out.adversarial = worst.adversarial();
  return out;
}

}  // namespace flexnn::attacks
