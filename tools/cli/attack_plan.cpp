// Attack plans: checking, JSON, the specs for a model, and the printed report.
#include "tools/cli/attack_plan.hpp"

#include "engine/error.hpp"
#include "engine/io/decimal.hpp"
#include "tools/cli/mean_sem.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace flexnn::cli {
namespace {

using Json = nlohmann::json;

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// json[key] as a list: one value, or an array of them.
Json as_list(const Json& value) { return value.is_array() ? value : Json::array({value}); }

int positive_int(const Json& value, const char* key, const std::string& where) {
  FLEXNN_CHECK(value.is_number_integer() && value.get<int64_t>() > 0 && value.get<int64_t>() <= 1000000,
               "{}: \"{}\" must be an integer from 1 to 1000000, found {}", where, key, value.dump());
  return value.get<int>();
}

float positive_float(const Json& value, const char* key, const std::string& where) {
  FLEXNN_CHECK(value.is_number() && value.get<double>() > 0 && std::isfinite(value.get<double>()),
               "{}: \"{}\" must be a positive number, found {}", where, key, value.dump());
  return value.get<float>();
}

std::string string_value(const Json& value, const char* key, const std::string& where) {
  FLEXNN_CHECK(value.is_string(), "{}: \"{}\" must be a string, found {}", where, key, value.dump());
  return value.get<std::string>();
}

}  // namespace

float default_step_size(float eps) { return eps * 0.003f / 0.031f; }

void check_plan(const AttackPlan& plan, const std::string& where) {
  FLEXNN_CHECK(!plan.attacks.empty(), "{}: no attack given (expected one or more of {}, suite)", where,
               fmt::join(attacks::attack_names(), ", "));
  for (const std::string& name : plan.attacks)
    FLEXNN_CHECK(name == "suite" || has(attacks::attack_names(), name),
                 "{}: unknown attack '{}' (expected one of {}, suite)", where, name,
                 fmt::join(attacks::attack_names(), ", "));
  FLEXNN_CHECK(!plan.eps.empty(), "{}: no ε given", where);
  for (float e : plan.eps)
    FLEXNN_CHECK(std::isfinite(e) && e >= 0, "{}: ε must be a finite number ≥ 0, found {}", where, e);
  FLEXNN_CHECK(plan.steps > 0 && plan.restarts > 0 && plan.apgd_iterations > 0 && plan.square_queries > 0 &&
                   plan.eot_samples > 0,
               "{}: steps, restarts, APGD iterations, Square queries and EOT samples must be positive", where);
  FLEXNN_CHECK(!plan.step_size || (std::isfinite(*plan.step_size) && *plan.step_size > 0),
               "{}: the step size must be a positive number, found {}", where, plan.step_size.value_or(0));
  FLEXNN_CHECK(plan.bpda_sharpness > 0, "{}: the BPDA sharpness must be positive, found {}", where,
               plan.bpda_sharpness);
  check_distinct({plan}, where);
  if (plan.norm == attacks::Norm::l2) {
    FLEXNN_CHECK(plan.space == attacks::EpsSpace::pixel,
                 "{}: an L2 ε is in pixel units only (found eps space 'normalized')", where);
    FLEXNN_CHECK(!has(plan.attacks, "square") && !has(plan.attacks, "suite"),
                 "{}: the Square attack (and so the suite) is L∞ only, found norm l2", where);
  }
}

void check_distinct(const std::vector<AttackPlan>& plans, const std::string& where) {
  struct Entry {
    std::string name;
    attacks::Norm norm;
    attacks::EpsSpace space;
    size_t plan;
  };
  std::map<float, std::vector<Entry>> at_eps;
  for (size_t p = 0; p < plans.size(); ++p)
    for (float eps : plans[p].eps)
      for (const std::string& name : plans[p].attacks) {
        std::vector<Entry>& entries = at_eps[eps];
        for (const Entry& e : entries) {
          const bool clash = e.name == name || (e.name == "suite" && name != "fgsm") || (name == "suite" && e.name != "fgsm");
          FLEXNN_CHECK(!clash, "{}: '{}' and '{}' both run {} at eps {:g}{}: each attack may run once per eps (the suite "
                       "runs pgd, apgd-ce, apgd-dlr, square and, as the model needs, bpda-pgd, eot-pgd, EOT APGD and "
                       "transfer)",
                       where, e.name, name, e.name == name ? "'" + name + "'" : std::string("the same attack"), eps,
                       plans.size() > 1 ? fmt::format(" (plans {} and {})", e.plan + 1, p + 1) : "");
          FLEXNN_CHECK(e.norm == plans[p].norm && e.space == plans[p].space,
                       "{}: plans {} and {} attack at eps {:g} under different threat models (norm or eps space); give "
                       "them different eps, or run them separately", where, e.plan + 1, p + 1, eps);
        }
        entries.push_back({name, plans[p].norm, plans[p].space, p});
      }
}

AttackPlan plan_from_json(const Json& json, const std::string& where) {
  static const std::set<std::string> known{"attack",   "eps",          "norm",           "eps_space",
                                           "steps",    "step_size",    "restarts",       "apgd_iterations",
                                           "square_queries", "eot_samples", "bpda_sharpness"};
  FLEXNN_CHECK(json.is_object(), "{}: an attack plan must be a JSON object, found {}", where, json.dump());
  for (const auto& [key, value] : json.items())
    FLEXNN_CHECK(known.contains(key), "{}: unknown key \"{}\" (known: {})", where, key, fmt::join(known, ", "));
  FLEXNN_CHECK(json.contains("attack") && json.contains("eps"), "{}: an attack plan needs \"attack\" and \"eps\"",
               where);
  AttackPlan plan;
  for (const Json& name : as_list(json["attack"])) plan.attacks.push_back(string_value(name, "attack", where));
  for (const Json& e : as_list(json["eps"])) {
    FLEXNN_CHECK(e.is_number(), "{}: \"eps\" must be a number or a list of numbers, found {}", where, e.dump());
    plan.eps.push_back(e.get<float>());
  }
  const std::string norm = json.contains("norm") ? string_value(json["norm"], "norm", where) : "linf";
  const std::string space = json.contains("eps_space") ? string_value(json["eps_space"], "eps_space", where) : "pixel";
  try {
    plan.norm = attacks::parse_norm(norm);
    plan.space = attacks::parse_eps_space(space);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());
  }
  if (json.contains("steps")) plan.steps = positive_int(json["steps"], "steps", where);
  if (json.contains("step_size")) plan.step_size = positive_float(json["step_size"], "step_size", where);
  if (json.contains("restarts")) plan.restarts = positive_int(json["restarts"], "restarts", where);
  if (json.contains("apgd_iterations"))
    plan.apgd_iterations = positive_int(json["apgd_iterations"], "apgd_iterations", where);
  if (json.contains("square_queries"))
    plan.square_queries = positive_int(json["square_queries"], "square_queries", where);
  if (json.contains("eot_samples")) plan.eot_samples = positive_int(json["eot_samples"], "eot_samples", where);
  if (json.contains("bpda_sharpness"))
    plan.bpda_sharpness = positive_float(json["bpda_sharpness"], "bpda_sharpness", where);
  check_plan(plan, where);
  return plan;
}

Json to_json(const AttackPlan& plan) {
  Json eps = Json::array();
  for (float e : plan.eps) eps.push_back(shortest_decimal(e));
  Json out{{"attack", plan.attacks},
           {"eps", eps},
           {"norm", attacks::norm_name(plan.norm)},
           {"eps_space", plan.space == attacks::EpsSpace::pixel ? "pixel" : "normalized"},
           {"steps", plan.steps},
           {"restarts", plan.restarts},
           {"apgd_iterations", plan.apgd_iterations},
           {"square_queries", plan.square_queries},
           {"eot_samples", plan.eot_samples},
           {"bpda_sharpness", shortest_decimal(plan.bpda_sharpness)}};
  if (plan.step_size) out["step_size"] = shortest_decimal(*plan.step_size);
  return out;
}

bool plan_needs_source(const AttackPlan& plan) { return has(plan.attacks, "transfer"); }

std::vector<attacks::AttackSpec> plan_specs(const AttackPlan& plan, nn::Module& model, const models::Config& config,
                                            nn::Module* source) {
  check_plan(plan, "attack plan");
  FLEXNN_CHECK(!plan_needs_source(plan) || source != nullptr,
               "the transfer attack needs a source model to craft its examples on (--source)");
  attacks::ThreatModel threat{.norm = plan.norm,
                              .eps = 0,
                              .space = plan.space,
                              .normalization_std = config.value("std", std::vector<float>{1.0f})};
  std::vector<attacks::AttackSpec> specs;
  for (const std::string& name : plan.attacks) {
    if (name == "fgsm") {
      const std::vector<attacks::AttackSpec> sweep = attacks::fgsm_sweep(plan.eps, threat);
      specs.insert(specs.end(), sweep.begin(), sweep.end());
      continue;
    }
    for (float eps : plan.eps) {
      threat.eps = eps;
      attacks::NamedAttackOptions options;
      options.pgd = {.steps = plan.steps,
                     .step_size = plan.step_size.value_or(default_step_size(eps)),
                     .random_start = true,
                     .restarts = plan.restarts};
      options.apgd.iterations = plan.apgd_iterations;
      options.apgd.restarts = plan.restarts;
      options.square.queries = plan.square_queries;
      options.eot_samples = plan.eot_samples;
      options.bpda_sharpness = plan.bpda_sharpness;
      if (name == "suite") {
        const std::vector<attacks::AttackSpec> suite = attacks::adaptive_suite(model, threat, options, source);
        specs.insert(specs.end(), suite.begin(), suite.end());
      } else {
        specs.push_back(attacks::named_attack(name, threat, options, name == "transfer" ? source : nullptr));
      }
    }
  }
  return specs;
}

void print_report(const attacks::AttackReport& report, const AttackPlan& plan) {
  const char* units = plan.space == attacks::EpsSpace::pixel ? "pixel" : "normalised";
  fmt::print("{:<16}{:>10}  {:<14}{:>18}{:>10}\n", "attack", "eps", "family", "accuracy %", "seconds");
  fmt::print("{:<16}{:>10}  {:<14}{:>18}{:>10.1f}\n", "clean", "-", "-", fmt::format("{:.2f}", report.clean.accuracy),
             report.clean.seconds);
  const std::vector<attacks::AccuracySummary> summaries = attacks::summarize(report);
  size_t run = 0;
  for (const attacks::AccuracySummary& s : summaries) {
    double seconds = 0;
    for (int r = 0; r < s.repeats; ++r) seconds += report.runs[run++].seconds;
    fmt::print("{:<16}{:>10g}  {:<14}{:>18}{:>10.1f}\n", s.name, s.eps, attacks::attack_family_name(s.family),
               format_mean_sem({s.mean, s.repeats > 1 ? s.sem : std::nan("")}), seconds);
  }
  for (const auto& [eps, worst] : attacks::worst_case_per_eps(report)) {
    fmt::print("{:<16}{:>10g}  {:<14}{:>18}\n", "worst case", eps, "per example", fmt::format("{:.2f}", worst.accuracy));
    for (const attacks::Warning& w : worst.warnings)
      fmt::print("  warning [{}] at eps {:g}: {}\n", attacks::warning_name(w.kind), eps, w.message);
  }
  const int repeats = summaries.empty() ? 1 : summaries.front().repeats;
  fmt::print("{} examples; eps in {} units, {}; {} run(s) per attack (mean ± SEM); worst case: correct clean and "
             "under every run at that eps\n",
             report.n, units, attacks::norm_name(plan.norm), repeats);
}

}  // namespace flexnn::cli
