// The robustness report over a set of attack runs (attacks/suite.hpp): accuracy per attack with
// its standard error over repeats, the per-example worst case over every run (an example is
// robust only if it was classified correctly clean and under every attack run), and
// AutoAttack-style warnings that an evaluation may overstate robustness:
//   zero-gradients        some examples' input gradient was exactly 0 at a gradient attack's first step
//   randomized-model      the same input gave different outputs in two forward passes
//   gradient-free-beats-gradient   the gradient-free attack's accuracy is below every white-box
//                         gradient attack's (gradient masking: Croce & Hein 2020)
//   transfer-beats-white-box       a black-box transfer attack's accuracy is below every white-box
//                         attack's (Athalye et al. 2018)
#pragma once

#include "attacks/suite.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace flexnn::attacks {

// An attack's accuracy over its repeats (percent): the mean and its standard error, the sample
// standard deviation over √R (0 for one run).
struct AccuracySummary {
  std::string name;
  float eps = 0;
  AttackFamily family = AttackFamily::white_box;
  int repeats = 0;
  double mean = 0, sem = 0;
  std::vector<double> runs;
};
// One per attack, in the report's order (runs of the same name, ε and family that follow each
// other, i.e. the repeats of one attack).
std::vector<AccuracySummary> summarize(const AttackReport& report);

enum class WarningKind { zero_gradients, randomized_model, gradient_free_beats_gradient, transfer_beats_white_box };
std::string_view warning_name(WarningKind kind);
struct Warning {
  WarningKind kind;
  std::string message;
};

struct WorstCase {
  std::vector<uint8_t> robust;   // per example: correct clean and in every run
  std::vector<float> margin;     // per example: the smallest margin over the clean input and every run
  std::vector<int> weakest;      // per example: the run with that margin (its index in the runs of the report
                                 // the worst case was taken over; −1: clean)
  double accuracy = 0;           // percent robust
  std::vector<Warning> warnings;
};
WorstCase worst_case(const AttackReport& report);

// A worst case over runs at different strengths would mix threat models, so a report whose runs
// use several ε takes one per ε: the report restricted to the runs at `eps` (the clean run, n and
// the randomisation flag kept), and the strengths its runs use, each once, in the order first seen.
AttackReport runs_at_eps(const AttackReport& report, float eps);
std::vector<float> run_eps(const AttackReport& report);
struct WorstCaseAtEps {
  float eps = 0;
  WorstCase worst;
};
std::vector<WorstCaseAtEps> worst_case_per_eps(const AttackReport& report);

// The report as JSON: {"n", "seconds", "randomized_model", "clean_accuracy", "runs": [{"name", "eps",
// "norm", "family", "repeat", "accuracy", "zero_gradient_examples", "seconds"}], "attacks": [the
// summaries: {"name", "eps", "family", "repeats", "mean", "sem", "runs"}], "worst_case": [one per ε:
// {"eps", "accuracy", "warnings": [{"kind", "message"}]}]}; with per_example also "per_example":
// {"clean_correct", "worst_case": [one per ε: {"eps", "robust", "margin"}]}, one entry per example.
nlohmann::json report_json(const AttackReport& report, bool per_example = false);

}  // namespace flexnn::attacks
