// mean_sem: the mean of repeated results (one per seed) and its standard error, as the reports of
// the experiments (Table 2, the Fig. 4 presets) print them.
#pragma once

#include <cmath>
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

}  // namespace flexnn::cli
