// ProgressBar's drawing.
#include "tools/cli/progress.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>

namespace flexnn::cli {

ProgressBar::ProgressBar(std::string label, int64_t total, bool interactive)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), interactive_(interactive) {}

bool ProgressBar::stdout_is_terminal() { return isatty(fileno(stdout)) != 0; }

void ProgressBar::update(int64_t done, double loss, double accuracy, double images_per_s) {
  if (!interactive_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * std::clamp<int64_t>(done, 0, total_) / total_);
  fmt::print("\r{} [{}{}] {}/{}  loss {:.4f}  acc {:.2f}%  {:.0f} img/s\033[K", label_, std::string(filled, '='),
             std::string(kWidth - filled, ' '), done, total_, loss, accuracy, images_per_s);
  std::fflush(stdout);
}

void ProgressBar::finish(const std::string& summary) {
  fmt::print("{}{}  {}{}\n", interactive_ ? "\r" : "", label_, summary, interactive_ ? "\033[K" : "");
  std::fflush(stdout);
}

}  // namespace flexnn::cli
