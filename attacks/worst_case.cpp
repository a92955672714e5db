// Summaries over repeats, the per-example minimum over runs, and the warnings.
#include "attacks/worst_case.hpp"

#include "engine/error.hpp"
#include "engine/io/decimal.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flexnn::attacks {
namespace {

// The lowest mean accuracy among the summaries of a family (+∞ if none).
double lowest(const std::vector<AccuracySummary>& summaries, AttackFamily family, const AccuracySummary** which) {
  double best = std::numeric_limits<double>::infinity();
  for (const AccuracySummary& s : summaries)
    if (s.family == family && s.mean < best) best = s.mean, *which = &s;
  return best;
}

// Examples broken by some run of `family` and by no white-box run.
int64_t broken_only_by(const AttackReport& report, AttackFamily family) {
  int64_t count = 0;
  for (int64_t i = 0; i < report.n; ++i) {
    bool by_family = false, by_white_box = false;
    for (const AttackRun& run : report.runs) {
      if (run.correct[i]) continue;
      by_family = by_family || run.family == family;
      by_white_box = by_white_box || run.family == AttackFamily::white_box;
    }
    count += by_family && !by_white_box;
  }
  return count;
}

}  // namespace

std::vector<AccuracySummary> summarize(const AttackReport& report) {
  std::vector<AccuracySummary> out;
  for (const AttackRun& run : report.runs) {
    if (out.empty() || out.back().name != run.name || out.back().eps != run.eps || out.back().family != run.family ||
        run.repeat == 0)
      out.emplace_back().name = run.name, out.back().eps = run.eps, out.back().family = run.family;
    out.back().runs.push_back(run.accuracy);
  }
  for (AccuracySummary& s : out) {
    s.repeats = static_cast<int>(s.runs.size());
    double sum = 0;
    for (double a : s.runs) sum += a;
    s.mean = sum / s.repeats;
    if (s.repeats > 1) {
      double squares = 0;
      for (double a : s.runs) squares += (a - s.mean) * (a - s.mean);
      s.sem = std::sqrt(squares / (s.repeats - 1)) / std::sqrt(static_cast<double>(s.repeats));
    }
  }
  return out;
}

std::string_view warning_name(WarningKind kind) {
  switch (kind) {
    case WarningKind::zero_gradients: return "zero-gradients";
    case WarningKind::randomized_model: return "randomized-model";
    case WarningKind::gradient_free_beats_gradient: return "gradient-free-beats-gradient";
    case WarningKind::transfer_beats_white_box: return "transfer-beats-white-box";
  }
  return "?";
}

WorstCase worst_case(const AttackReport& report) {
  const auto n = static_cast<size_t>(report.n);
  FLEXNN_CHECK(report.clean.correct.size() == n && report.clean.margin.size() == n,
               "worst case: the clean run has {} verdicts for {} examples", report.clean.correct.size(), n);
  for (const AttackRun& run : report.runs)
    FLEXNN_CHECK(run.correct.size() == n && run.margin.size() == n,
                 "worst case: run '{}' (repeat {}) has {} verdicts and {} margins for {} examples", run.name,
                 run.repeat, run.correct.size(), run.margin.size(), n);
  WorstCase w;
  w.robust = report.clean.correct;
  w.margin = report.clean.margin;
  w.weakest.assign(n, -1);
  for (size_t r = 0; r < report.runs.size(); ++r) {
    const AttackRun& run = report.runs[r];
    for (size_t i = 0; i < n; ++i) {
      w.robust[i] = w.robust[i] && run.correct[i];
      if (run.margin[i] < w.margin[i]) w.margin[i] = run.margin[i], w.weakest[i] = static_cast<int>(r);
    }
  }
  w.accuracy = n == 0 ? 0 : 100.0 * static_cast<double>(std::count(w.robust.begin(), w.robust.end(), uint8_t{1})) /
                                static_cast<double>(n);

  std::vector<std::string> flagged;
  for (const AttackRun& run : report.runs) {
    if (run.zero_gradient_examples == 0 || run.family == AttackFamily::gradient_free ||
        std::find(flagged.begin(), flagged.end(), run.name) != flagged.end())
      continue;
    flagged.push_back(run.name);
    w.warnings.push_back(
        {WarningKind::zero_gradients,
         fmt::format("{}: {} of {} examples ({:.2f}%) had an input gradient of exactly 0 at the attack's first step "
                     "(repeat {}); gradient attacks cannot move them, so their accuracy may overstate robustness",
                     run.name, run.zero_gradient_examples, report.n,
                     100.0 * static_cast<double>(run.zero_gradient_examples) / static_cast<double>(report.n),
                     run.repeat)});
  }
  if (report.randomized_model)
    w.warnings.push_back({WarningKind::randomized_model,
                          "the model gave different outputs for the same inputs in two forward passes: it is "
                          "randomised; every accuracy is one draw (use repeats for their SEM), and gradient attacks "
                          "need EOT"});
  const std::vector<AccuracySummary> summaries = summarize(report);
  const AccuracySummary* white = nullptr;
  const double white_box = lowest(summaries, AttackFamily::white_box, &white);
  for (const auto& [family, kind] :
       {std::pair{AttackFamily::gradient_free, WarningKind::gradient_free_beats_gradient},
        std::pair{AttackFamily::transfer, WarningKind::transfer_beats_white_box}}) {
    const AccuracySummary* other = nullptr;
    const double accuracy = lowest(summaries, family, &other);
    if (white == nullptr || other == nullptr || accuracy >= white_box) continue;
    w.warnings.push_back(
        {kind, fmt::format("the {} attack {} ({:.2f}%) beats every white-box gradient attack (best: {}, {:.2f}%), and "
                           "breaks {} examples none of them broke: the gradients may be masked",
                           attack_family_name(family), other->name, accuracy, white->name, white_box,
                           broken_only_by(report, family))});
  }
  return w;
}

AttackReport runs_at_eps(const AttackReport& report, float eps) {
  AttackReport out{.n = report.n, .clean = report.clean, .runs = {}, .randomized_model = report.randomized_model,
                   .seconds = report.seconds};
  for (const AttackRun& run : report.runs)
    if (run.eps == eps) out.runs.push_back(run);
  return out;
}

std::vector<float> run_eps(const AttackReport& report) {
  std::vector<float> eps;
  for (const AttackRun& run : report.runs)
    if (std::find(eps.begin(), eps.end(), run.eps) == eps.end()) eps.push_back(run.eps);
  return eps;
}

std::vector<WorstCaseAtEps> worst_case_per_eps(const AttackReport& report) {
  std::vector<WorstCaseAtEps> out;
  for (float eps : run_eps(report)) out.push_back({eps, worst_case(runs_at_eps(report, eps))});
  return out;
}

nlohmann::json report_json(const AttackReport& report, bool per_example) {
  nlohmann::json runs = nlohmann::json::array(), attacks = nlohmann::json::array(),
                 worst_cases = nlohmann::json::array(), per_eps = nlohmann::json::array();
  for (const AttackRun& run : report.runs)
    runs.push_back({{"name", run.name},
                    {"eps", shortest_decimal(run.eps)},
                    {"norm", norm_name(run.norm)},
                    {"family", attack_family_name(run.family)},
                    {"repeat", run.repeat},
                    {"accuracy", run.accuracy},
                    {"zero_gradient_examples", run.zero_gradient_examples},
                    {"seconds", run.seconds}});
  for (const AccuracySummary& s : summarize(report))
    attacks.push_back({{"name", s.name},
                       {"eps", shortest_decimal(s.eps)},
                       {"family", attack_family_name(s.family)},
                       {"repeats", s.repeats},
                       {"mean", s.mean},
                       {"sem", s.sem},
                       {"runs", s.runs}});
  for (const auto& [eps, worst] : worst_case_per_eps(report)) {
    nlohmann::json warnings = nlohmann::json::array();
    for (const Warning& w : worst.warnings)
      warnings.push_back({{"kind", warning_name(w.kind)}, {"message", w.message}});
    worst_cases.push_back({{"eps", shortest_decimal(eps)}, {"accuracy", worst.accuracy}, {"warnings", warnings}});
    per_eps.push_back({{"eps", shortest_decimal(eps)}, {"robust", worst.robust}, {"margin", worst.margin}});
  }
  nlohmann::json out{{"n", report.n},
                     {"seconds", report.seconds},
                     {"randomized_model", report.randomized_model},
                     {"clean_accuracy", report.clean.accuracy},
                     {"runs", runs},
                     {"attacks", attacks},
                     {"worst_case", worst_cases}};
  if (per_example) out["per_example"] = {{"clean_correct", report.clean.correct}, {"worst_case", per_eps}};
  return out;
}

}  // namespace flexnn::attacks
