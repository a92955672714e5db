// The Square attack's schedule and its search loop: host-side state per example, one batched
// forward of the still-correct examples per query.
#include "attacks/square.hpp"

#include "attacks/gradient.hpp"
#include "attacks/losses.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace flexnn::attacks {
namespace {

// An integer uniform in [0, n) from a uniform in [0, 1).
int64_t below(float u, int64_t n) { return std::min<int64_t>(static_cast<int64_t>(u * static_cast<float>(n)), n - 1); }

}  // namespace

float square_fraction(int iteration, int queries, float p_init) {
  FLEXNN_CHECK(queries >= 1 && iteration >= 0, "square: iteration {} of {} queries", iteration, queries);
  const int64_t it = static_cast<int64_t>(iteration) * 10000 / queries;
  constexpr std::array<std::pair<int64_t, float>, 9> kSchedule{
      {{10, 1.0f}, {50, 2.0f}, {200, 4.0f}, {500, 8.0f}, {1000, 16.0f}, {2000, 32.0f}, {4000, 64.0f},
       {6000, 128.0f}, {8000, 256.0f}}};
  for (const auto& [until, divisor] : kSchedule)
    if (it <= until) return p_init / divisor;
  return p_init / 512.0f;
}

int64_t square_side(float p, int64_t height, int64_t width) {
  const auto s = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(p) * double(height) * double(width))));
  return std::clamp<int64_t>(s, 1, std::max<int64_t>(std::min(height, width) - 1, 1));
}

AttackBatch square(nn::Module& model, const Tensor& x, const Tensor& labels, const ThreatModel& threat,
                   const SquareOptions& options, Generator& gen) {
  FLEXNN_CHECK(threat.norm == Norm::linf, "square: only the L∞ threat model is implemented, found {}",
               norm_name(threat.norm));
  FLEXNN_CHECK(options.queries >= 1, "square: expected at least 1 query, found {}", options.queries);
  FLEXNN_CHECK(options.p_init > 0 && options.p_init <= 1, "square: p_init must be in (0, 1], found {}",
               options.p_init);
  const EpsBall ball(x, threat);  // checks the shape and ε
  const std::vector<int64_t> y = host_labels(labels);
  const int64_t n = x.size(0), channels = x.size(1), h = x.size(2), w = x.size(3), plane = h * w;
  const int64_t features = channels * plane;
  FLEXNN_CHECK(static_cast<int64_t>(y.size()) == n, "square: {} labels for inputs {}", y.size(), shape_str(x.shape()));
  const std::vector<float> eps = threat.pixel(threat.eps);
  const auto eps_of = [&](int64_t c) { return eps.size() == 1 ? eps[0] : eps[c]; };

  // The vertices of the set per element: lo = max(x − ε, 0), hi = min(x + ε, 1).
  const std::vector<float> clean = x.to(kCPU).to_vector();
  std::vector<float> lo(clean.size()), hi(clean.size());
  for (int64_t i = 0; i < n * features; ++i) {
    const float e = eps_of((i / plane) % channels);
    lo[i] = std::max(clean[i] - e, 0.0f), hi[i] = std::min(clean[i] + e, 1.0f);
  }
  // Vertical stripes: one sign per example, channel and column.
  std::vector<float> best(clean.size());
  const std::vector<float> stripes = gen.uniform(n * channels * w);
  for (int64_t i = 0; i < n * features; ++i) {
    const int64_t column = i % w, example_channel = i / plane;
    best[i] = std::clamp(clean[i] + (stripes[example_channel * w + column] < 0.5f ? -1.0f : 1.0f) *
                                        eps_of(example_channel % channels), 0.0f, 1.0f);
  }
  const auto forward = [&](const std::vector<float>& images, std::span<const int64_t> image_labels) {
    const auto count = static_cast<int64_t>(image_labels.size());
    return verdicts(host_logits(model, Tensor::from_vector(images, {count, channels, h, w}, x.device())),
                    image_labels)
        .margin;
  };
  std::vector<float> margin = forward(best, y);

  std::vector<int64_t> active, active_labels;
  std::vector<float> candidates;
  for (int iteration = 0; iteration + 1 < options.queries; ++iteration) {
    active.clear(), active_labels.clear();
    for (int64_t i = 0; i < n; ++i)
      if (margin[i] > 0) active.push_back(i), active_labels.push_back(y[i]);
    if (active.empty()) break;
    const int64_t s = square_side(square_fraction(iteration, options.queries, options.p_init), h, w);
    const auto count = static_cast<int64_t>(active.size());
    candidates.resize(count * features);
    const std::vector<float> draws = gen.uniform(count * (2 + channels));
    for (int64_t a = 0; a < count; ++a) {
      const int64_t offset = active[a] * features;
      float* candidate = candidates.data() + a * features;
      std::copy_n(best.data() + offset, features, candidate);
      const int64_t top = below(draws[a * (2 + channels)], h - s + 1);
      const int64_t left = below(draws[a * (2 + channels) + 1], w - s + 1);
      const float* signs = draws.data() + a * (2 + channels) + 2;
      std::vector<float> retry;
      for (int attempt = 0; attempt < 8; ++attempt) {
        bool changed = false;
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t r = top; r < top + s; ++r)
            for (int64_t col = left; col < left + s; ++col) {
              const int64_t e = c * plane + r * w + col;
              candidate[e] = signs[c] < 0.5f ? lo[offset + e] : hi[offset + e];
              changed = changed || std::abs(candidate[e] - best[offset + e]) >= 1e-7f;
            }
        if (changed) break;
        retry = gen.uniform(channels);
        signs = retry.data();
      }
    }
    const std::vector<float> candidate_margin = forward(candidates, active_labels);
    for (int64_t a = 0; a < count; ++a) {
      if (candidate_margin[a] >= margin[active[a]]) continue;
      margin[active[a]] = candidate_margin[a];
      std::copy_n(candidates.data() + a * features, features, best.data() + active[a] * features);
    }
  }
  return {Tensor::from_vector(best, x.shape(), x.device()), 0};
}

}  // namespace flexnn::attacks
