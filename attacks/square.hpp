// The Square attack, L∞ (Andriushchenko, Croce, Flammarion & Hein 2020): gradient-free random
// search on the margin loss z_y − max_{i≠y} z_i. It starts from vertical stripes x + ±ε per
// column and channel, then each query moves one random s×s window (every channel, a random sign
// per channel) to a vertex of the ε-ball and keeps it if the margin went down; an example stops
// once misclassified (margin ≤ 0). The window covers a fraction p of the image,
// s = round(√(p·H·W)) clamped to [1, min(H, W) − 1], and p halves on the schedule of the reference
// code (query i of Q rescaled to i·10000/Q: p_init until 10, then /2 until 50, /4 until 200,
// /8 until 500, /16 until 1000, /32 until 2000, /64 until 4000, /128 until 6000, /256 until 8000,
// then /512). A drawn window that would not change the image gets new signs (up to 8 tries). Unlike
// the reference code, a window may sit anywhere in the image, the last row and column included.
// The search keeps its state on the host and sends the model only the examples still correct.
#pragma once

#include "attacks/threat_model.hpp"
#include "engine/nn/module.hpp"

namespace flexnn::attacks {

struct SquareOptions {
  int queries = 5000;   // model evaluations per example, the initial stripes' included (AutoAttack: 5000)
  float p_init = 0.8f;  // AutoAttack's
};

// p after `iteration` (0-based) of the search's queries − 1 iterations.
float square_fraction(int iteration, int queries, float p_init);
// The window side for fraction p of an H×W image.
int64_t square_side(float p, int64_t height, int64_t width);

// L∞ only; the model should be in evaluation mode.
AttackBatch square(nn::Module& model, const Tensor& x, const Tensor& labels, const ThreatModel& threat,
                   const SquareOptions& options, Generator& gen);

}  // namespace flexnn::attacks
