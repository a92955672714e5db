// APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks", Algorithm 1), with the cross-entropy (APGD-CE) or the DLR loss
// (APGD-DLR, K ≥ 3 classes). From a random point of the ε-sphere (L∞: x + ε·t/‖t‖∞, t ~ U(−1, 1)),
//   z ← P(x⁽ᵏ⁾ + η·sign(∇f(x⁽ᵏ⁾)))   (L2: η·∇f/‖∇f‖₂)
//   x⁽ᵏ⁺¹⁾ ← P(x⁽ᵏ⁾ + α(z − x⁽ᵏ⁾) + (1 − α)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾)),  α = 0.75 (1 at the first step)
// where P projects onto the ε-ball ∩ [0, 1]. Each example has its own step size η, initially 2ε,
// halved at checkpoint w_j when
//   1. the loss increased in fewer than ρ·(w_j − w_{j−1}) of the steps since w_{j−1} (ρ = 0.75), or
//   2. η was not halved at w_{j−1} and the best loss has not changed since;
// after a halving the next step starts from the best point found. The checkpoints are
// w_j = ⌈p_j·N⌉, p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06).
// Where the paper and the authors' code differ slightly (the code counts "≤ ρ·k" increases,
// compares the first step with a zero-initialised buffer and never applies condition 2 at w_1),
// this follows the paper. An example's result is its last misclassified iterate if it was ever
// misclassified, else its highest-loss iterate; restarts keep the per-example worst case.
#pragma once

#include "attacks/gradient.hpp"
#include "attacks/threat_model.hpp"

#include <span>
#include <vector>

namespace flexnn::attacks {

struct ApgdOptions {
  int iterations = 100;
  int restarts = 1;
  float rho = 0.75f;           // condition 1
  float momentum = 0.75f;      // α
  float initial_step = 2.0f;   // η at the start, in units of ε
};

// The checkpoints w_1 < w_2 < … ≤ N (iteration counts) for N iterations.
std::vector<int> apgd_checkpoints(int iterations);

// The per-example step-size control of APGD, on the host: it sees each iteration's losses and
// decides, at the checkpoints, which examples' steps halve.
class ApgdStepControl {
 public:
  // initial_loss: f(x⁽⁰⁾) per example.
  ApgdStepControl(std::span<const float> initial_loss, int iterations, float initial_step, float rho);

  struct Update {
    std::vector<uint8_t> improved;  // the new iterate's loss beats the best so far (it becomes x_max)
    std::vector<uint8_t> halved;    // this was a checkpoint and the step halved: restart from x_max
  };
  // The losses f(x⁽ᵏ⁺¹⁾) of the iterate just computed (iteration k + 1 of N).
  Update update(std::span<const float> loss);

  const std::vector<float>& step() const { return step_; }  // η per example, in units of ε
  const std::vector<float>& best_loss() const { return best_; }
  int iterations_done() const { return done_; }

 private:
  std::vector<int> checkpoints_;
  size_t next_checkpoint_ = 0;
  int last_checkpoint_ = 0;
  int done_ = 0;
  float rho_;
  std::vector<float> step_, best_, previous_, best_at_last_checkpoint_;
  std::vector<int> increases_;
  std::vector<uint8_t> halved_at_last_checkpoint_;
};

AttackBatch apgd(nn::Module& model, const Tensor& x, const Tensor& labels, const ThreatModel& threat,
                 const ApgdOptions& options, const GradientOptions& gradient, Generator& gen);

}  // namespace flexnn::attacks
