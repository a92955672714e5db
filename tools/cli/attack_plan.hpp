// An attack plan: what `flexnn attack` and the robustness presets run against a model — attacks by
// name (attacks/suite.hpp) or the adaptive suite, each at one or more strengths ε, with their
// settings — as the attack specs for one model, read from and written to JSON (the presets' keys),
// and the results printed as a table: every attack's accuracy (mean ± SEM over repeats) and, per ε,
// the worst case over every attack at that ε with its warnings.
#pragma once

#include "attacks/suite.hpp"
#include "attacks/worst_case.hpp"
#include "models/registry.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace flexnn::cli {

struct AttackPlan {
  std::vector<std::string> attacks;  // names of attacks::attack_names(), or "suite"
  std::vector<float> eps;            // each attack runs at each ε (FGSM as one sweep)
  attacks::Norm norm = attacks::Norm::linf;
  attacks::EpsSpace space = attacks::EpsSpace::pixel;
  int steps = 20;                       // PGD family
  std::optional<float> step_size{};     // PGD family, in ε's units; none: ε·0.003/0.031 (TRADES' ratio)
  int restarts = 1;                     // PGD family and APGD
  int apgd_iterations = 100;
  int square_queries = 5000;
  int eot_samples = 10;
  float bpda_sharpness = 5.0f;
};

// TRADES' step for its ε (0.003 at 0.031), scaled to another ε, so that 20 steps can cross the
// ball (1.94 ε) whatever its size.
float default_step_size(float eps);

// Checks the plan: known attack names, at least one attack and one ε, every ε ≥ 0 and finite,
// positive counts; L2 only with pixel units and without square; no attack twice (check_distinct).
// Throws flexnn::Error naming `where`.
void check_plan(const AttackPlan& plan, const std::string& where);

// Checks that plans run no attack twice at one ε — the suite counts as every attack it may run, so
// at an ε it shares with another plan only FGSM may join it — and use one threat model (norm, ε
// space) per ε: each measure and each per-ε worst case is then well defined. Throws naming `where`.
void check_distinct(const std::vector<AttackPlan>& plans, const std::string& where);

// The keys of a plan in JSON: "attack" (a name or a list of names), "eps" (a number or a list),
// "norm", "eps_space", "steps", "step_size", "restarts", "apgd_iterations", "square_queries",
// "eot_samples", "bpda_sharpness". Unknown keys and wrong types are errors naming `where`.
AttackPlan plan_from_json(const nlohmann::json& json, const std::string& where);
nlohmann::json to_json(const AttackPlan& plan);

// Whether the plan needs a source model: it runs the transfer attack. (The suite takes one when
// given, and then adds transfer.)
bool plan_needs_source(const AttackPlan& plan);

// The plan's attack specs for `model` (whose config gives the normalisation's std for the
// normalised ε space), in the plan's order, each at every ε; transfer needs `source`, and the suite
// adds transfer when it is given.
std::vector<attacks::AttackSpec> plan_specs(const AttackPlan& plan, nn::Module& model, const models::Config& config,
                                            nn::Module* source);

// Prints the report: clean accuracy, one line per attack (mean ± SEM over repeats, seconds), and
// per ε the worst case with its warnings.
void print_report(const attacks::AttackReport& report, const AttackPlan& plan);

}  // namespace flexnn::cli
