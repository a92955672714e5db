// mean_sem: the mean of repeated results (one per seed) and its standard error, as the reports of
// the experiments (Table 2, the Fig. 4 presets, the attacks) print them.
#pragma once

#include <fmt/core.h>

#include <cmath>
#include <string>
#include <limits>
#include <vector>

namespace flexnn::cli {

struct MeanSem {
  double mean, sem;  // sem is NaN for a single value
};

inline MeanSem mean_sem(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  if (v.size() < 2) return {mean, std::numeric_limits<double>::quiet_NaN()};
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return {mean, std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()))};
}

// "mean ± sem" with two decimals, or the mean alone when the SEM is NaN (one value).
inline std::string format_mean_sem(const MeanSem& m) {
  return std::isnan(m.sem) ? fmt::format("{:.2f}", m.mean) : fmt::format("{:.2f} ± {:.2f}", m.mean, m.sem);
}

}  // namespace flexnn::cli
