// A one-line progress bar for training epochs: on a terminal it redraws in place (at most ten
// times a second) with loss, accuracy and images/s; elsewhere (a log file, a pipe) it stays
// silent until finish(), so logs hold one plain line per epoch.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace flexnn::cli {

class ProgressBar {
 public:
  // `label` prefixes the line (e.g. "epoch 3/10"); `total` is the number of steps.
  ProgressBar(std::string label, int64_t total, bool interactive);
  void update(int64_t done, double loss, double accuracy, double images_per_s);
  // Ends the line with `summary` (printed on every kind of output).
  void finish(const std::string& summary);

  // Whether stdout is a terminal.
  static bool stdout_is_terminal();

 private:
  std::string label_;
  int64_t total_;
  bool interactive_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace flexnn::cli
