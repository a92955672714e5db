// SVG rendering of the CLI's bar and line charts: a shared frame (title, y axis with ticks and grid,
// legend), the two plot kinds on top of it, and the atomic file writer.
#include "tools/cli/svg_chart.hpp"

#include "engine/io/atomic_file.hpp"

#include "engine/error.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace flexnn::cli {
namespace {

// Okabe & Ito's colour-blind-safe palette, most distinguishable first (yellow last: it is faint on
// white); series beyond eight reuse it.
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                    "#56B4E9", "#D55E00", "#000000", "#F0E442"};
constexpr double kPlotLeft = 70, kPlotTop = 50, kPlotHeight = 300, kBottomMargin = 70;
constexpr double kMinPlotWidth = 560, kLegendGap = 20, kCharWidth = 7, kCapHalfWidth = 4;

const char* colour(size_t series) { return kPalette[series % std::size(kPalette)]; }

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// A pixel coordinate as SVG text.
std::string px(double v) { return fmt::format("{:.2f}", v); }

// "12.5 ± 0.3" (or just "12.5") for tooltips.
std::string value_text(double value, double error) {
  return std::isnan(error) ? fmt::format("{:g}", value) : fmt::format("{:g} ± {:g}", value, error);
}

// Digits after the decimal point needed to print v exactly at tick precision (at most 6).
int decimals_for(double v) {
  int d = 0;
  for (double scaled = std::abs(v); d < 6 && std::abs(scaled - std::round(scaled)) > 1e-6 * std::max(1.0, scaled);
       scaled *= 10) {
    ++d;
  }
  return d;
}

// The 1, 2, 2.5 or 5 × 10^k step that splits `span` into about five intervals.
double nice_step(double span) {
  const double raw = span / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude;
  }
  return 10 * magnitude;
}

// A linear axis from lo to hi with ticks every `step` from `first`, mapped onto pixels [p0, p1].
struct Axis {
  double lo, hi, first, step;
  double p0, p1;

  double to_px(double v) const { return p0 + (p1 - p0) * (std::clamp(v, lo, hi) - lo) / (hi - lo); }
  std::vector<double> ticks() const {
    std::vector<double> out;
    for (int i = 0; first + i * step <= hi + 1e-9 * step; ++i) out.push_back(first + i * step);
    return out;
  }
  std::string label(double tick) const {
    return fmt::format("{:.{}f}", tick, std::max(decimals_for(step), decimals_for(first)));
  }
};

// Checks a chart's series against the number of points (categories or x) and its y range.
void check_series(const std::vector<Series>& series, size_t points, std::string_view points_name,
                  std::string_view chart, double y_min, double y_max) {
  FLEXNN_CHECK(!series.empty(), "chart '{}': expected at least one series, found none", chart);
  FLEXNN_CHECK(points > 0, "chart '{}': expected at least one {}, found none", chart, points_name);
  for (const Series& s : series) {
    FLEXNN_CHECK(s.values.size() == points, "chart '{}': series '{}' has {} values, expected one per {} ({})", chart,
                 s.name, s.values.size(), points_name, points);
    FLEXNN_CHECK(s.errors.empty() || s.errors.size() == points,
                 "chart '{}': series '{}' has {} errors, expected none or one per value ({})", chart, s.name,
                 s.errors.size(), points);
    for (size_t i = 0; i < points; ++i) {
      FLEXNN_CHECK(!std::isinf(s.values[i]), "chart '{}': series '{}' value {} is infinite", chart, s.name, i);
      if (s.errors.empty()) continue;
      const double e = s.errors[i];
      FLEXNN_CHECK(std::isnan(e) || (std::isfinite(e) && e >= 0),
                   "chart '{}': series '{}' error {} must be finite and non-negative (or NaN for none), found {}",
                   chart, s.name, i, e);
    }
  }
  FLEXNN_CHECK(std::isfinite(y_min), "chart '{}': y_min must be finite, found {}", chart, y_min);
  FLEXNN_CHECK(std::isnan(y_max) || (std::isfinite(y_max) && y_max > y_min),
               "chart '{}': y_max must be above y_min ({}) or NaN for automatic, found {}", chart, y_min, y_max);
}

double error_of(const Series& s, size_t i) { return s.errors.empty() ? NAN : s.errors[i]; }

// The y axis: y_min up to y_max, or, when y_max is NaN, up to the largest value + error rounded up
// to a tick.
Axis make_y_axis(const std::vector<Series>& series, double y_min, double y_max) {
  double hi = y_max;
  if (std::isnan(hi)) {
    hi = y_min;
    for (const Series& s : series) {
      for (size_t i = 0; i < s.values.size(); ++i) {
        const double e = error_of(s, i);
        if (!std::isnan(s.values[i])) hi = std::max(hi, s.values[i] + (std::isnan(e) ? 0 : e));
      }
    }
    if (hi <= y_min) hi = y_min + 1;
    const double step = nice_step(hi - y_min);
    hi = y_min + std::ceil((hi - y_min) / step - 1e-9) * step;
  }
  return {y_min, hi, y_min, nice_step(hi - y_min), kPlotTop + kPlotHeight, kPlotTop};
}

double legend_width(const std::vector<Series>& series) {
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, s.name.size());
  return 40 + kCharWidth * static_cast<double>(longest);
}

// The document's opening, background, title, y axis (ticks, grid lines, label) and x axis line.
std::string begin_frame(double width, double plot_width, const std::string& title, const Axis& y,
                        const std::string& y_label) {
  const double height = kPlotTop + kPlotHeight + kBottomMargin;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect class=\"background\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text class=\"title\" x=\"{2}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">{3}</text>\n",
      px(width), px(height), px(kPlotLeft + plot_width / 2), escape(title));
  const double right = kPlotLeft + plot_width;
  for (const double tick : y.ticks()) {
    const std::string ty = px(y.to_px(tick));
    out += fmt::format(
        "<line class=\"grid\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#dddddd\"/>\n"
        "<text class=\"tick\" x=\"{3}\" y=\"{2}\" text-anchor=\"end\" dominant-baseline=\"middle\">{4}</text>\n",
        px(kPlotLeft), px(right), ty, px(kPlotLeft - 6), y.label(tick));
  }
  const double middle = kPlotTop + kPlotHeight / 2;
  out += fmt::format(
      "<text class=\"axis-label\" x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0})\">{1}</text>\n"
      "<line class=\"axis\" x1=\"{2}\" y1=\"{3}\" x2=\"{2}\" y2=\"{4}\" stroke=\"#333333\"/>\n"
      "<line class=\"axis\" x1=\"{2}\" y1=\"{4}\" x2=\"{5}\" y2=\"{4}\" stroke=\"#333333\"/>\n",
      px(middle), escape(y_label), px(kPlotLeft), px(kPlotTop), px(kPlotTop + kPlotHeight), px(right));
  return out;
}

// The legend to the right of the plot: a swatch (bars) or a line with a marker (lines) per series.
void add_legend(std::string& out, double plot_width, const std::vector<Series>& series, bool lines) {
  const double x = kPlotLeft + plot_width + kLegendGap;
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = kPlotTop + 10 + 20 * static_cast<double>(i);
    if (lines) {
      out += fmt::format(
          "<line class=\"swatch\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"/>"
          "<circle class=\"swatch\" cx=\"{4}\" cy=\"{2}\" r=\"3.5\" fill=\"{3}\"/>\n",
          px(x), px(x + 20), px(y), colour(i), px(x + 10));
    } else {
      out += fmt::format("<rect class=\"swatch\" x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>\n", px(x + 3),
                         px(y - 7), colour(i));
    }
    out += fmt::format("<text class=\"legend\" x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>\n", px(x + 26),
                       px(y), escape(series[i].name));
  }
}

// A vertical ± error bar with caps at x around `value`, clamped to the y axis; nothing for NaN.
void add_error_bar(std::string& out, double x, double value, double error, const Axis& y, double cap) {
  if (std::isnan(error)) return;
  const std::string lo = px(y.to_px(value - error)), hi = px(y.to_px(value + error));
  out += fmt::format(
      "<path class=\"error-bar\" d=\"M{0} {1}V{2}M{3} {1}H{4}M{3} {2}H{4}\" stroke=\"#222222\" stroke-width=\"1.2\" "
      "fill=\"none\"/>\n",
      px(x), lo, hi, px(x - cap), px(x + cap));
}

}  // namespace

std::string render_svg(const BarChart& chart) {
  check_series(chart.series, chart.categories.size(), "category", chart.title, chart.y_min, chart.y_max);
  const double n_series = static_cast<double>(chart.series.size());
  const double n_categories = static_cast<double>(chart.categories.size());
  const double plot_width = std::max(kMinPlotWidth, n_categories * (16 * n_series + 40));
  const Axis y = make_y_axis(chart.series, chart.y_min, chart.y_max);
  std::string out = begin_frame(kPlotLeft + plot_width + kLegendGap + legend_width(chart.series) + 10, plot_width,
                                chart.title, y, chart.y_label);

  // Each category's group fills 80% of its slot; each bar 90% of its share of the group.
  const double slot = plot_width / n_categories, bar_slot = 0.8 * slot / n_series;
  const double bar_width = 0.9 * bar_slot, cap = std::min(kCapHalfWidth, bar_width / 3);
  const double baseline = y.to_px(y.lo);
  for (size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    out += fmt::format("<g class=\"series\" fill=\"{}\">\n", colour(s));
    for (size_t c = 0; c < chart.categories.size(); ++c) {
      const double value = series.values[c];
      if (std::isnan(value)) continue;
      const double x = kPlotLeft + slot * (static_cast<double>(c) + 0.1) + bar_slot * (static_cast<double>(s) + 0.05);
      const double top = y.to_px(value);
      out += fmt::format("<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} — {}: {}</title></rect>\n",
                         px(x), px(top), px(bar_width), px(baseline - top), escape(series.name),
                         escape(chart.categories[c]), value_text(value, error_of(series, c)));
      add_error_bar(out, x + bar_width / 2, value, error_of(series, c), y, cap);
    }
    out += "</g>\n";
  }
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    out += fmt::format("<text class=\"category\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       px(kPlotLeft + slot * (static_cast<double>(c) + 0.5)), px(baseline + 18),
                       escape(chart.categories[c]));
  }
  add_legend(out, plot_width, chart.series, false);
  return out + "</svg>\n";
}

std::string render_svg(const LineChart& chart) {
  check_series(chart.series, chart.x.size(), "x", chart.title, chart.y_min, chart.y_max);
  for (size_t i = 0; i < chart.x.size(); ++i) {
    FLEXNN_CHECK(std::isfinite(chart.x[i]), "chart '{}': x {} must be finite, found {}", chart.title, i, chart.x[i]);
  }
  const Axis y = make_y_axis(chart.series, chart.y_min, chart.y_max);
  auto [x_lo, x_hi] = std::minmax_element(chart.x.begin(), chart.x.end());
  double lo = *x_lo, hi = *x_hi;
  if (lo == hi) {  // a single x: give the axis some width
    lo -= 1;
    hi += 1;
  }
  const double x_step = nice_step(hi - lo);
  // Inset by 10 px so markers at the ends stay inside the plot.
  const Axis x{lo, hi, std::ceil(lo / x_step - 1e-9) * x_step, x_step, kPlotLeft + 10, kPlotLeft + kMinPlotWidth - 10};
  std::string out = begin_frame(kPlotLeft + kMinPlotWidth + kLegendGap + legend_width(chart.series) + 10,
                                kMinPlotWidth, chart.title, y, chart.y_label);

  const double baseline = y.to_px(y.lo);
  for (const double tick : x.ticks()) {
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(x.to_px(tick)),
                       px(baseline + 18), x.label(tick));
  }
  out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     px(kPlotLeft + kMinPlotWidth / 2), px(baseline + 45), escape(chart.x_label));

  for (size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    // One path for the whole series; a NaN value ends a run and the next value starts a new one.
    std::string d;
    bool in_run = false, has_segment = false;
    for (size_t i = 0; i < chart.x.size(); ++i) {
      if (std::isnan(series.values[i])) {
        in_run = false;
        continue;
      }
      d += fmt::format("{}{} {}", in_run ? "L" : "M", px(x.to_px(chart.x[i])), px(y.to_px(series.values[i])));
      has_segment |= in_run;
      in_run = true;
    }
    out += fmt::format("<g class=\"series\" stroke=\"{0}\" fill=\"{0}\">\n", colour(s));
    if (has_segment) out += fmt::format("<path class=\"line\" d=\"{}\" fill=\"none\" stroke-width=\"2\"/>\n", d);
    for (size_t i = 0; i < chart.x.size(); ++i) {
      const double value = series.values[i];
      if (std::isnan(value)) continue;
      const double cx = x.to_px(chart.x[i]);
      add_error_bar(out, cx, value, error_of(series, i), y, kCapHalfWidth);
      out += fmt::format("<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3.5\"><title>{} at {:g}: {}</title></circle>\n",
                         px(cx), px(y.to_px(value)), escape(series.name), chart.x[i],
                         value_text(value, error_of(series, i)));
    }
    out += "</g>\n";
  }
  add_legend(out, kMinPlotWidth, chart.series, true);
  return out + "</svg>\n";
}

void write_svg_file(const std::filesystem::path& path, const std::string& svg) {
  const std::filesystem::path directory = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code error;
  FLEXNN_CHECK(std::filesystem::is_directory(directory, error), "SVG write '{}': directory '{}' does not exist",
               path.string(), directory.string());
  write_text_atomically(path, svg, "SVG");
}

}  // namespace flexnn::cli
