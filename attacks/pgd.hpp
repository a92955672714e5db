// PGD (Madry et al. 2018) with the TRADES evaluation protocol as its default (Zhang et al. 2019,
// pgd_attack_cifar10.py): inputs in [0, 1], ε = 0.031, 20 steps of 0.003, a random start
// x + U(−ε, ε) not clamped before the first step, and at every step
//   x ← x + step·sign(∇ₓ loss),  then the projection onto the ε-ball around x,  then clamp to [0, 1].
// L2 takes normalised-gradient steps and a uniform start in the L2 ball. The attack's verdict is
// its last iterate (as TRADES'); restarts keep the per-example worst case (attacks/restarts.hpp),
// judged by one more forward of each restart's last iterate. The gradient is the oracle of
// attacks/gradient.hpp, so EOT-PGD and BPDA-PGD are PGD with those options, and a transfer attack
// is PGD on a source model whose examples another model is evaluated on.
#pragma once

#include "attacks/gradient.hpp"
#include "attacks/threat_model.hpp"

namespace flexnn::attacks {

struct PgdOptions {
  int steps = 20;
  float step_size = 0.003f;  // in the units of the threat model's ε
  bool random_start = true;
  int restarts = 1;
};

// Adversarial examples of x [N, C, H, W] (in [0, 1]) with int64 labels [N] for the model (which
// should be in evaluation mode); random starts draw from gen.
AttackBatch pgd(nn::Module& model, const Tensor& x, const Tensor& labels, const ThreatModel& threat,
                const PgdOptions& options, const GradientOptions& gradient, Generator& gen);

}  // namespace flexnn::attacks
