// The SVG chart writer: documents are well formed, bars and points sit where their values say,
// error bars appear exactly where errors are given, text is escaped, NaNs are skipped, bad input
// throws, and files are written atomically.
#include "cli/cli_files.hpp"
#include "tools/cli/svg_chart.hpp"

#include "engine/error.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

namespace {

using flexnn::testing::count_occurrences;
using flexnn::cli::BarChart;
using flexnn::cli::LineChart;
using flexnn::cli::Series;

// True when every tag is closed in order, the root is one <svg> element, and every '&' starts one
// of XML's five entities (so no raw '<' or '&' leaked from text).
bool well_formed(const std::string& svg) {
  if (svg.rfind("<svg", 0) != 0 || svg.find("</svg>") != svg.size() - std::string("</svg>\n").size()) return false;
  std::vector<std::string> open;
  size_t roots = 0;
  for (size_t at = svg.find('<'); at != std::string::npos; at = svg.find('<', at + 1)) {
    const size_t end = svg.find('>', at);
    if (end == std::string::npos) return false;
    const std::string tag = svg.substr(at + 1, end - at - 1);
    if (tag.empty()) return false;
    const bool closing = tag.front() == '/', self_closing = tag.back() == '/';
    const std::string name = tag.substr(closing, tag.find_first_of(" /", closing) - closing);
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") != std::string::npos) return false;
    if (closing) {
      if (open.empty() || open.back() != name) return false;
      open.pop_back();
    } else if (!self_closing) {
      roots += open.empty();
      open.push_back(name);
    }
  }
  static const std::regex entity("&(?!(amp|lt|gt|quot|apos);)");
  return open.empty() && roots == 1 && !std::regex_search(svg, entity);
}

// Every match of `pattern`, each as its captured groups converted to numbers.
std::vector<std::vector<double>> numbers(const std::string& svg, const std::string& pattern) {
  std::vector<std::vector<double>> out;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    std::vector<double> row;
    for (size_t g = 1; g < it->size(); ++g) row.push_back(std::stod((*it)[g].str()));
    out.push_back(row);
  }
  return out;
}

struct Bar {
  double x, y, width, height;
};

std::vector<Bar> bars(const std::string& svg) {
  std::vector<Bar> out;
  for (const auto& r : numbers(svg, R"re(<rect class="bar" x="([-\d.]+)" y="([-\d.]+)" width="([-\d.]+)" height="([-\d.]+)")re")) {
    out.push_back({r[0], r[1], r[2], r[3]});
  }
  return out;
}

// The [low px, high px] extent of each error bar (its first vertical stroke).
std::vector<std::vector<double>> error_bars(const std::string& svg) {
  return numbers(svg, R"re(<path class="error-bar" d="M([-\d.]+) ([-\d.]+)V([-\d.]+))re");
}

BarChart sample_bars() {
  BarChart chart;
  chart.title = "Fashion-MNIST accuracy";
  chart.y_label = "accuracy (%)";
  chart.categories = {"baseline", "uniform", "standard"};
  chart.series = {{"paper clean", {80, 50, 20}, {}}, {"ours clean", {35, 65, 72.5}, {1.5, 2, 0.5}}};
  return chart;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("bar chart: well formed, one bar per value, heights proportional to values", "[svg]") {
  const BarChart chart = sample_bars();
  const std::string svg = render_svg(chart);
  CHECK(well_formed(svg));
  const std::vector<Bar> drawn = bars(svg);
  REQUIRE(drawn.size() == 6);
  std::vector<double> values;
  for (const Series& s : chart.series) values.insert(values.end(), s.values.begin(), s.values.end());
  const double scale = drawn[0].height / values[0];  // y_min is 0, so height = scale * value
  CHECK(scale > 1);
  for (size_t i = 0; i < drawn.size(); ++i) {
    INFO("bar " << i);
    CHECK(drawn[i].height == Approx(scale * values[i]).margin(0.02));
    CHECK(drawn[i].y + drawn[i].height == Approx(drawn[0].y + drawn[0].height).margin(0.02));  // one baseline
    CHECK(drawn[i].width > 5);
  }
  for (size_t c = 0; c < 3; ++c) {
    if (c > 0) CHECK(drawn[c].x > drawn[c - 1].x + drawn[c - 1].width);  // categories left to right
    CHECK(drawn[3 + c].x >= drawn[c].x + drawn[c].width);                // series side by side
    CHECK(drawn[3 + c].x < (c < 2 ? drawn[c + 1].x : 1e9));              // within the category's group
  }
  CHECK(count_occurrences(svg, "class=\"category\"") == 3);
  CHECK(count_occurrences(svg, "class=\"legend\"") == 2);
  CHECK_THAT(svg, Catch::Contains(">Fashion-MNIST accuracy</text>") && Catch::Contains(">accuracy (%)</text>") &&
                      Catch::Contains(">ours clean</text>") && Catch::Contains(">standard</text>"));
  // The two series get different colours.
  const std::regex fill("<g class=\"series\" fill=\"(#[0-9A-Fa-f]{6})\"");
  std::vector<std::string> fills;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), fill); it != std::sregex_iterator(); ++it) {
    fills.push_back((*it)[1]);
  }
  REQUIRE(fills.size() == 2);
  CHECK(fills[0] != fills[1]);
}

TEST_CASE("bar chart: the automatic y axis covers the largest value plus its error", "[svg]") {
  BarChart chart = sample_bars();
  chart.series[1].values[2] = 96;
  chart.series[1].errors[2] = 3;
  const std::string svg = render_svg(chart);
  double top_tick = 0;
  for (const auto& t : numbers(svg, R"re(class="tick"[^>]*>([-\d.]+)</text>)re")) top_tick = std::max(top_tick, t[0]);
  CHECK(top_tick >= 99);
  CHECK(top_tick <= 150);
  // The error bar's top stays at or below the axis top (the highest tick's pixel row).
  double axis_top = 1e9;
  for (const auto& g : numbers(svg, R"re(<line class="grid" x1="[-\d.]+" y1="([-\d.]+)")re")) axis_top = std::min(axis_top, g[0]);
  for (const auto& e : error_bars(svg)) CHECK(std::min(e[1], e[2]) >= axis_top - 0.01);

  chart.y_max = 200;  // an explicit range is kept
  double explicit_top = 0;
  for (const auto& t : numbers(render_svg(chart), R"re(class="tick"[^>]*>([-\d.]+)</text>)re")) {
    explicit_top = std::max(explicit_top, t[0]);
  }
  CHECK(explicit_top == 200);
}

TEST_CASE("bar chart: error bars only where errors are given, sized by the error", "[svg]") {
  BarChart chart = sample_bars();
  chart.y_max = 100;
  chart.series[0].errors = {};  // none
  chart.series[1].errors = {5, NAN, 2};
  const std::string svg = render_svg(chart);
  CHECK(well_formed(svg));
  const std::vector<Bar> drawn = bars(svg);
  REQUIRE(drawn.size() == 6);
  const auto drawn_errors = error_bars(svg);
  REQUIRE(drawn_errors.size() == 2);
  const double scale = drawn[0].height / 80;
  const double expected[2] = {5, 2};
  const size_t bar_of[2] = {3, 5};
  for (size_t i = 0; i < 2; ++i) {
    const auto& e = drawn_errors[i];
    const Bar& bar = drawn[bar_of[i]];
    CHECK(std::abs(e[1] - e[2]) == Approx(2 * expected[i] * scale).margin(0.02));
    CHECK((e[1] + e[2]) / 2 == Approx(bar.y).margin(0.02));               // centred on the bar's top
    CHECK(e[0] == Approx(bar.x + bar.width / 2).margin(0.02));             // and on its middle
  }
  chart.series[1].errors.clear();
  CHECK(count_occurrences(render_svg(chart), "error-bar") == 0);
}

TEST_CASE("bar chart: text is XML-escaped", "[svg]") {
  BarChart chart = sample_bars();
  chart.title = "a < b & \"c\"";
  chart.y_label = "it's > 0";
  chart.categories[0] = "<script>";
  chart.series[0].name = "x&y";
  const std::string svg = render_svg(chart);
  CHECK(well_formed(svg));
  CHECK_THAT(svg, Catch::Contains("a &lt; b &amp; &quot;c&quot;") && Catch::Contains("it&apos;s &gt; 0") &&
                      Catch::Contains("&lt;script&gt;") && Catch::Contains(">x&amp;y</text>"));
  CHECK(svg.find("<script>") == std::string::npos);
}

TEST_CASE("bar chart: a NaN value draws no bar and no error bar, and keeps its slot", "[svg]") {
  BarChart chart = sample_bars();
  chart.series[1].values[1] = NAN;
  chart.series[1].errors = {1, 4, 1};
  const std::string svg = render_svg(chart);
  CHECK(well_formed(svg));
  CHECK_FALSE(std::regex_search(svg, std::regex(R"([" >:]-?nan)")));  // no NaN printed as a number
  const std::vector<Bar> drawn = bars(svg);
  REQUIRE(drawn.size() == 5);
  CHECK(error_bars(svg).size() == 2);
  // The remaining "ours" bars are those of categories 0 and 2, in their own groups.
  CHECK(drawn[4].x > drawn[2].x);
  CHECK(drawn[3].x < drawn[1].x);
  CHECK(drawn[4].height == Approx(drawn[0].height / 80 * 72.5).margin(0.02));
}

TEST_CASE("charts reject mismatched or invalid input with flexnn::Error", "[svg]") {
  using Catch::Contains;
  BarChart short_series = sample_bars();
  short_series.series[1].values.pop_back();
  CHECK_THROWS_MATCHES(render_svg(short_series), flexnn::Error,
                       Catch::Matchers::Predicate<flexnn::Error>([](const flexnn::Error& e) {
                         const std::string m = e.what();
                         return m.find("'ours clean'") != std::string::npos && m.find("2 values") != std::string::npos &&
                                m.find("(3)") != std::string::npos;
                       }));
  BarChart short_errors = sample_bars();
  short_errors.series[1].errors = {1};
  CHECK_THROWS_WITH(render_svg(short_errors), Contains("1 errors") && Contains("ours clean"));
  BarChart negative_error = sample_bars();
  negative_error.series[1].errors[0] = -1;
  CHECK_THROWS_WITH(render_svg(negative_error), Contains("non-negative") && Contains("-1"));
  BarChart infinite = sample_bars();
  infinite.series[0].values[2] = INFINITY;
  CHECK_THROWS_AS(render_svg(infinite), flexnn::Error);
  BarChart bad_range = sample_bars();
  bad_range.y_max = 0;
  CHECK_THROWS_WITH(render_svg(bad_range), Contains("y_max"));
  BarChart empty = sample_bars();
  empty.series.clear();
  CHECK_THROWS_WITH(render_svg(empty), Contains("at least one series"));
  BarChart no_categories = sample_bars();
  no_categories.categories.clear();
  CHECK_THROWS_AS(render_svg(no_categories), flexnn::Error);

  LineChart line{"sweep", "epsilon", "accuracy (%)", {0, 0.1, 0.2}, {{"ours", {90, 50}, {}}}};
  CHECK_THROWS_WITH(render_svg(line), Contains("'ours'") && Contains("2 values"));
  line.series[0].values = {90, 50, 10};
  line.x[1] = NAN;
  CHECK_THROWS_WITH(render_svg(line), Contains("x 1 must be finite"));
}

TEST_CASE("line chart: points where the values say, NaN breaks the line, error bars where given", "[svg]") {
  LineChart chart{"FGSM sweep", "epsilon", "accuracy (%)", {0, 0.05, 0.1, 0.15, 0.2},
                  {{"standard", {90, 70, NAN, 40, 30}, {1, NAN, 2, 3, 1}}, {"baseline", {88, 60, 35, 20, 10}, {}}}};
  const std::string svg = render_svg(chart);
  CHECK(well_formed(svg));
  const auto points = numbers(svg, R"re(<circle class="point" cx="([-\d.]+)" cy="([-\d.]+)")re");
  REQUIRE(points.size() == 9);
  // First series without its NaN, then the second.
  const double values[9] = {90, 70, 40, 30, 88, 60, 35, 20, 10};
  const double xs[9] = {0, 0.05, 0.15, 0.2, 0, 0.05, 0.1, 0.15, 0.2};
  const double y_scale = (points[4][1] - points[8][1]) / (values[8] - values[4]);  // px per unit, > 0 upwards
  const double x_scale = (points[8][0] - points[4][0]) / (xs[8] - xs[4]);
  CHECK(y_scale > 1);
  CHECK(x_scale > 100);
  for (size_t i = 0; i < 9; ++i) {
    INFO("point " << i);
    CHECK(points[i][1] == Approx(points[4][1] - y_scale * (values[i] - values[4])).margin(0.02));
    CHECK(points[i][0] == Approx(points[4][0] + x_scale * xs[i]).margin(0.02));
  }
  // The NaN splits the first series' line into two runs; the second is one run.
  const std::regex line(R"re(<path class="line" d="([^"]*)")re");
  std::vector<std::string> paths;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), line); it != std::sregex_iterator(); ++it) {
    paths.push_back((*it)[1]);
  }
  REQUIRE(paths.size() == 2);
  CHECK(count_occurrences(paths[0], "M") == 2);
  CHECK(count_occurrences(paths[0], "L") == 2);
  CHECK(count_occurrences(paths[1], "M") == 1);
  CHECK(count_occurrences(paths[1], "L") == 4);
  // Errors 1, 3 and 1 are drawn (NaN error and NaN value are not), centred on their points.
  const auto drawn_errors = error_bars(svg);
  REQUIRE(drawn_errors.size() == 3);
  const double expected[3] = {1, 3, 1};
  const size_t point_of[3] = {0, 2, 3};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(std::abs(drawn_errors[i][1] - drawn_errors[i][2]) == Approx(2 * expected[i] * y_scale).margin(0.02));
    CHECK(drawn_errors[i][0] == Approx(points[point_of[i]][0]).margin(0.02));
  }
  CHECK_THAT(svg, Catch::Contains(">epsilon</text>") && Catch::Contains(">0.15</text>"));
}

TEST_CASE("write_svg_file writes atomically and reports a missing directory", "[svg]") {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("flexnn-svg-{}", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string svg = render_svg(sample_bars());

  const auto file = dir / "chart.svg";
  flexnn::cli::write_svg_file(file, "old");
  flexnn::cli::write_svg_file(file, svg);  // replaces the old content
  CHECK(read_file(file) == svg);

  const auto missing = dir / "no-such-dir" / "chart.svg";
  CHECK_THROWS_WITH(flexnn::cli::write_svg_file(missing, svg),
                    Catch::Contains("no-such-dir") && Catch::Contains("does not exist"));
  CHECK_FALSE(std::filesystem::exists(dir / "no-such-dir"));

  // The target is a directory: the rename fails, and the temporary file is removed.
  std::filesystem::create_directory(dir / "taken.svg");
  CHECK_THROWS_WITH(flexnn::cli::write_svg_file(dir / "taken.svg", svg), Catch::Contains("cannot rename"));
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"chart.svg", "taken.svg"});
  std::filesystem::remove_all(dir);
}
