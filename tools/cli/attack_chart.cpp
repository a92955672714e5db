// Measures of attack reports, and their line or bar chart.
#include "tools/cli/attack_chart.hpp"

#include "tools/cli/svg_chart.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <set>

namespace flexnn::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string measure_key(const std::string& name, double eps) { return fmt::format("{} @ {:g}", name, eps); }

}  // namespace

std::vector<std::pair<Measure, MeanSem>> report_measures(const nlohmann::json& report) {
  std::vector<std::pair<Measure, MeanSem>> out{
      {{"clean", "clean", 0, false}, {report.at("clean_accuracy").get<double>(), kNaN}}};
  for (const nlohmann::json& a : report.at("attacks")) {
    const double eps = a.at("eps").get<float>();
    const double sem = a.at("repeats").get<int>() > 1 ? a.at("sem").get<double>() : kNaN;
    const std::string name = a.at("name");
    out.push_back({{measure_key(name, eps), name, eps, false}, {a.at("mean").get<double>(), sem}});
  }
  for (const nlohmann::json& w : report.at("worst_case")) {
    const double eps = w.at("eps").get<float>();
    out.push_back({{measure_key("worst case", eps), "worst case", eps, true}, {w.at("accuracy").get<double>(), kNaN}});
  }
  return out;
}

void add_measure(std::vector<Measure>& rows, const Measure& measure) {
  if (std::any_of(rows.begin(), rows.end(), [&](const Measure& m) { return m.key == measure.key; })) return;
  const auto first_worst = std::find_if(rows.begin(), rows.end(), [](const Measure& m) { return m.worst; });
  rows.insert(measure.worst ? rows.end() : first_worst, measure);
}

std::string attack_chart_svg(const std::string& title, const std::vector<Measure>& rows,
                             const std::vector<MeasuredSeries>& series) {
  const auto value = [](const MeasuredSeries& s, const std::string& key) {
    const auto it = s.values.find(key);
    return it == s.values.end() ? MeanSem{kNaN, kNaN} : it->second;
  };
  std::vector<std::string> swept;  // attacks measured at more than one ε
  for (const Measure& row : rows) {
    if (row.worst || row.key == "clean" || std::find(swept.begin(), swept.end(), row.name) != swept.end()) continue;
    if (std::count_if(rows.begin(), rows.end(), [&](const Measure& m) { return m.name == row.name; }) > 1)
      swept.push_back(row.name);
  }
  if (swept.empty()) {
    BarChart chart{.title = title, .y_label = "accuracy (%)", .categories = {}, .series = {}, .y_min = 0, .y_max = 100};
    for (const Measure& row : rows) chart.categories.push_back(row.key);
    for (const MeasuredSeries& s : series) {
      Series bars{s.label, {}, {}};
      for (const Measure& row : rows) {
        const MeanSem m = value(s, row.key);
        bars.values.push_back(m.mean), bars.errors.push_back(m.sem);
      }
      chart.series.push_back(std::move(bars));
    }
    return render_svg(chart);
  }
  std::set<double> eps{0.0};
  for (const Measure& row : rows)
    if (std::find(swept.begin(), swept.end(), row.name) != swept.end()) eps.insert(row.eps);
  LineChart chart{.title = title, .x_label = "eps", .y_label = "accuracy (%)", .x = {eps.begin(), eps.end()},
                  .series = {}, .y_min = 0, .y_max = 100};
  for (const MeasuredSeries& s : series)
    for (const std::string& name : swept) {
      Series line{swept.size() > 1 ? fmt::format("{}, {}", s.label, name) : s.label, {}, {}};
      for (double x : chart.x) {
        MeanSem m = value(s, measure_key(name, x));
        if (std::isnan(m.mean) && x == 0) m = value(s, "clean");
        line.values.push_back(m.mean), line.errors.push_back(m.sem);
      }
      chart.series.push_back(std::move(line));
    }
  return render_svg(chart);
}

}  // namespace flexnn::cli
