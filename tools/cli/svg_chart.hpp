// Dependency-free SVG charts for the CLI's reports: a grouped bar chart (e.g. accuracy per model
// mode, paper vs ours) and a line chart (e.g. accuracy per attack epsilon), both with ± error bars,
// and an atomic file writer. Plain SVG 1.1 text, so the reports open in any browser.
#pragma once

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace flexnn::cli {

// One named series: a value per category (bar chart) or per x (line chart). A NaN value is a
// missing number and is not drawn. `errors` is empty (no error bars) or holds one ± half-width per
// value (e.g. the SEM); a NaN error draws no bar for that value.
struct Series {
  std::string name;
  std::vector<double> values;
  std::vector<double> errors;
};

// Categories along x, one bar per series in each category's group. The y axis runs from y_min to
// y_max; a NaN y_max is chosen from the data (the largest value + error, rounded up to a tick).
struct BarChart {
  std::string title, y_label;
  std::vector<std::string> categories;
  std::vector<Series> series;
  double y_min = 0;
  double y_max = NAN;
};

// Numeric x (finite, any order; drawn in the given order), one polyline with markers per series.
// A NaN value breaks its line. The y axis as in BarChart.
struct LineChart {
  std::string title, x_label, y_label;
  std::vector<double> x;
  std::vector<Series> series;
  double y_min = 0;
  double y_max = NAN;
};

// The chart as a standalone SVG document. Bars are `<rect class="bar">` elements, emitted series by
// series and, within a series, in category order; each drawn error bar is one
// `<path class="error-bar">`; line-chart points are `<circle class="point">`. Throws flexnn::Error
// when a series' values or errors do not match the categories / x, an x is not finite, an error is
// negative, or y_max is not above y_min.
std::string render_svg(const BarChart& chart);
std::string render_svg(const LineChart& chart);

// Writes `svg` to `path` through `<path>.tmp-<pid>` and a rename, so `path` holds either its old
// content or the whole new file. Throws flexnn::Error when the directory is missing or unwritable.
void write_svg_file(const std::filesystem::path& path, const std::string& svg);

}  // namespace flexnn::cli
