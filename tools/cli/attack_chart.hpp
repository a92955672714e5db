// The measures of attack reports (attacks::report_json's layout) — clean accuracy, each attack at
// each ε, the worst case at each ε — and their chart: accuracy against ε with SEM error bars where
// an attack sweeps ε (ε = 0 drawn as the clean accuracy), else bars per measure. `flexnn attack
// --svg` draws one series (the model), the presets one per variant.
#pragma once

#include "tools/cli/mean_sem.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace flexnn::cli {

struct Measure {
  std::string key;   // "clean", "pgd @ 0.031", "worst case @ 0.031"
  std::string name;  // "clean", "pgd", "worst case"
  double eps = 0;
  bool worst = false;
};

// A report's measures in its order (clean, the attacks, the worst cases), each with its accuracy
// (the mean over repeats) and the SEM over repeats (NaN for one run, the clean run and worst cases).
std::vector<std::pair<Measure, MeanSem>> report_measures(const nlohmann::json& report);

// Adds `measure` to `rows` unless a row has its key; worst cases are kept after every other row.
void add_measure(std::vector<Measure>& rows, const Measure& measure);

// One line (or one colour of bars): its legend and its values by measure key.
struct MeasuredSeries {
  std::string label;
  std::map<std::string, MeanSem> values;
};

// The chart of `series` over `rows` as an SVG document.
std::string attack_chart_svg(const std::string& title, const std::vector<Measure>& rows,
                             const std::vector<MeasuredSeries>& series);

}  // namespace flexnn::cli
