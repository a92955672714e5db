// timing: the benchmarks' one timing method and result file. time_median runs the work once to
// warm up, then times it (each repetition followed by `wait`, e.g. a device synchronisation) until
// it has run at least min_reps times and for at least target_s seconds in all (at most 1000 times),
// and returns the median. write_json writes atomically (a temporary file, then a rename).
#pragma once

#include "engine/io/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace flexnn::bench {

struct Timing {
  double median_ms;
  int reps;
};

inline Timing time_median(const std::function<void()>& fn, int min_reps, double target_s,
                          const std::function<void()>& wait = [] {}) {
  using Clock = std::chrono::steady_clock;
  fn();
  wait();
  std::vector<double> ms;
  double total_ms = 0;
  while (ms.size() < static_cast<std::size_t>(min_reps) || (total_ms < target_s * 1e3 && ms.size() < 1000)) {
    const auto start = Clock::now();
    fn();
    wait();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    total_ms += ms.back();
  }
  std::sort(ms.begin(), ms.end());
  const std::size_t mid = ms.size() / 2;
  return {ms.size() % 2 == 1 ? ms[mid] : 0.5 * (ms[mid - 1] + ms[mid]), static_cast<int>(ms.size())};
}

inline void write_json(const std::string& path, const nlohmann::json& doc) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  write_text_atomically(target, doc.dump(2) + "\n", "benchmark results");
}

}  // namespace flexnn::bench
