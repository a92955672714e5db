// The named attacks, the adaptive suite, and the one-pass runner over a data set.
#include "attacks/suite.hpp"

#include "datasets/data_loader.hpp"
#include "models/registry.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace flexnn::attacks {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One input gradient per batch, repeat and gradient source, shared by the FGSM runs of a sweep.
struct FgsmGradient {
  const nn::Module* source;
  GradientOptions options;
  int repeat;
  Tensor grad;
  int64_t zero_gradient_examples;
};

bool same_gradient(const GradientOptions& a, const GradientOptions& b) {
  return a.loss == b.loss && a.eot_samples == b.eot_samples && a.bpda_sharpness == b.bpda_sharpness;
}

void append(AttackRun& run, const LossValues& v) {
  run.correct.insert(run.correct.end(), v.correct.begin(), v.correct.end());
  run.margin.insert(run.margin.end(), v.margin.begin(), v.margin.end());
}

// FGSM's examples from an input gradient: clamp(x + ε·sign(g), 0, 1) (L2: the normalised step, projected).
Tensor fgsm_examples(const AttackSpec& spec, const Tensor& x, const Tensor& grad) {
  if (spec.threat.norm == Norm::linf) return fgsm_step(x, grad, spec.threat.pixel(spec.threat.eps));
  const EpsBall ball(x, spec.threat);
  return ball.project(ball.ascent_step(x, grad, ball.radius()));
}

void finish(AttackRun& run, int64_t n) {
  run.accuracy = 100.0 * static_cast<double>(std::count(run.correct.begin(), run.correct.end(), uint8_t{1})) /
                 static_cast<double>(n);
}

}  // namespace

std::string_view attack_family_name(AttackFamily family) {
  switch (family) {
    case AttackFamily::white_box: return "white-box";
    case AttackFamily::transfer: return "transfer";
    case AttackFamily::gradient_free: return "gradient-free";
  }
  return "?";
}

AttackFamily AttackSpec::family() const {
  if (std::holds_alternative<SquareOptions>(method)) return AttackFamily::gradient_free;
  return source != nullptr ? AttackFamily::transfer : AttackFamily::white_box;
}

const std::vector<std::string>& attack_names() {
  static const std::vector<std::string> names{"fgsm",    "pgd",     "transfer", "eot-pgd",
                                              "bpda-pgd", "apgd-ce", "apgd-dlr", "square"};
  return names;
}

AttackSpec named_attack(std::string_view name, const ThreatModel& threat, const NamedAttackOptions& options,
                        nn::Module* source) {
  AttackSpec spec;
  spec.name = name, spec.threat = threat;
  if (name == "fgsm") {
    spec.method = FgsmOptions{};
  } else if (name == "pgd") {
    spec.method = options.pgd;
  } else if (name == "transfer") {
    FLEXNN_CHECK(source != nullptr, "the transfer attack needs a source model to craft its examples on");
    spec.method = options.pgd;
    spec.source = source;
  } else if (name == "eot-pgd") {
    spec.method = options.pgd;
    spec.gradient.eot_samples = options.eot_samples;
  } else if (name == "bpda-pgd") {
    spec.method = options.pgd;
    spec.gradient.bpda_sharpness = options.bpda_sharpness;
  } else if (name == "apgd-ce" || name == "apgd-dlr") {
    spec.method = options.apgd;
    spec.gradient.loss = name == "apgd-ce" ? AttackLoss::cross_entropy : AttackLoss::dlr;
  } else if (name == "square") {
    spec.method = options.square;
  } else {
    fail("unknown attack '{}': expected one of {}", name, fmt::join(attack_names(), ", "));
  }
  FLEXNN_CHECK(name == "transfer" || source == nullptr, "attack '{}' is white-box: only transfer takes a source model",
               name);
  return spec;
}

std::vector<AttackSpec> adaptive_suite(nn::Module& model, const ThreatModel& threat,
                                       const NamedAttackOptions& options, nn::Module* source) {
  bool random = false, gated = false;
  for (const nn::FlexibleConv2d* layer : models::flexible_layers(model)) {
    random = random || layer->options().mode == nn::FlexMode::random;
    gated = gated || (layer->options().mode != nn::FlexMode::random && layer->options().mode != nn::FlexMode::none);
  }
  std::vector<AttackSpec> suite{named_attack("pgd", threat, options)};
  if (gated) suite.push_back(named_attack("bpda-pgd", threat, options));
  if (random) suite.push_back(named_attack("eot-pgd", threat, options));
  for (const char* apgd : {"apgd-ce", "apgd-dlr"}) {
    AttackSpec spec = named_attack(apgd, threat, options);
    if (random) spec.name = "eot-" + spec.name, spec.gradient.eot_samples = options.eot_samples;
    suite.push_back(spec);
  }
  suite.push_back(named_attack("square", threat, options));
  if (source != nullptr) suite.push_back(named_attack("transfer", threat, options, source));
  return suite;
}

std::vector<AttackSpec> fgsm_sweep(std::span<const float> eps, const ThreatModel& threat,
                                   const GradientOptions& gradient) {
  std::vector<AttackSpec> specs;
  for (float e : eps) {
    AttackSpec spec;
    spec.name = "fgsm", spec.threat = threat, spec.method = FgsmOptions{}, spec.gradient = gradient;
    spec.threat.eps = e;
    specs.push_back(spec);
  }
  return specs;
}

AttackBatch attack_batch(const AttackSpec& spec, nn::Module& target, const Tensor& x, const Tensor& labels,
                         Generator& gen) {
  nn::Module& model = spec.source != nullptr ? *spec.source : target;
  if (const auto* o = std::get_if<PgdOptions>(&spec.method))
    return pgd(model, x, labels, spec.threat, *o, spec.gradient, gen);
  if (const auto* o = std::get_if<ApgdOptions>(&spec.method))
    return apgd(model, x, labels, spec.threat, *o, spec.gradient, gen);
  if (const auto* o = std::get_if<SquareOptions>(&spec.method)) return square(model, x, labels, spec.threat, *o, gen);
  const LossGradient g = input_gradient(model, x, host_labels(labels), spec.gradient);
  return {fgsm_examples(spec, x, g.grad), zero_gradient_examples(g)};
}

bool is_randomized(nn::Module& model, const Tensor& x) {
  const std::vector<float> a = host_logits(model, x), b = host_logits(model, x);
  const int64_t n = x.size(0), classes = static_cast<int64_t>(a.size()) / n;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = a.data() + i * classes;
    const float* q = b.data() + i * classes;
    if (std::max_element(p, p + classes) - p != std::max_element(q, q + classes) - q) return true;
    double norm_p = 1e-10, norm_q = 1e-10;
    for (int64_t k = 0; k < classes; ++k) norm_p += std::abs(p[k]), norm_q += std::abs(q[k]);
    for (int64_t k = 0; k < classes; ++k)
      if (std::abs(p[k] / norm_p - q[k] / norm_q) > 1e-4) return true;
  }
  return false;
}

AttackReport run_attacks(nn::Module& model, const datasets::ImageSource& data, std::span<const AttackSpec> attacks,
                         const RunOptions& options) {
  const auto start = Clock::now();
  FLEXNN_CHECK(data.size() > 0, "run_attacks: the data set is empty");
  FLEXNN_CHECK(options.batch_size >= 1 && options.repeats >= 1,
               "run_attacks: expected a batch size and repeats of at least 1, found {} and {}", options.batch_size,
               options.repeats);
  model.eval();
  const Device device = model.device();
  for (const AttackSpec& spec : attacks) {
    if (spec.source == nullptr) continue;
    spec.source->eval();
    FLEXNN_CHECK(spec.source->device() == device, "attack '{}': the source model is on {} but the target on {}",
                 spec.name, spec.source->device().str(), device.str());
  }
  const int repeats = options.repeats;
  AttackReport report;
  report.clean.name = "clean";
  std::vector<Generator> streams;
  for (size_t a = 0; a < attacks.size(); ++a)
    for (int r = 0; r < repeats; ++r) {
      AttackRun& run = report.runs.emplace_back();
      run.name = attacks[a].name, run.eps = attacks[a].threat.eps, run.norm = attacks[a].threat.norm;
      run.family = attacks[a].family(), run.repeat = r;
      streams.emplace_back().set_state(options.seed, static_cast<uint64_t>(report.runs.size() - 1) << 40);
    }

  datasets::DataLoader loader(data, {.batch_size = options.batch_size, .shuffle = false, .workers = options.workers});
  loader.start_epoch(0);
  int64_t done = 0;
  while (auto batch = loader.next()) {
    const Tensor images = batch->images.to(device), labels = batch->labels.to(device);
    const std::vector<int64_t> y = host_labels(batch->labels);
    {
      const auto t0 = Clock::now();
      append(report.clean, verdicts(host_logits(model, images), y));
      if (done == 0) report.randomized_model = is_randomized(model, images);
      report.clean.seconds += seconds_since(t0);
    }
    std::vector<FgsmGradient> fgsm_gradients;
    for (size_t a = 0; a < attacks.size(); ++a) {
      const AttackSpec& spec = attacks[a];
      nn::Module& crafter = spec.source != nullptr ? *spec.source : model;
      // FGSM has no randomness of its own: on a deterministic model its repeats are its first run.
      const bool same_as_first = std::holds_alternative<FgsmOptions>(spec.method) && !report.randomized_model;
      LossValues first;
      int64_t first_zero_gradients = 0;
      for (int r = 0; r < repeats; ++r) {
        AttackRun& run = report.runs[a * repeats + r];
        const auto t0 = Clock::now();
        if (r > 0 && same_as_first) {
          append(run, first);
          run.zero_gradient_examples += first_zero_gradients;
          run.seconds += seconds_since(t0);
          continue;
        }
        AttackBatch result;
        if (std::holds_alternative<FgsmOptions>(spec.method)) {
          auto cached = std::find_if(fgsm_gradients.begin(), fgsm_gradients.end(), [&](const FgsmGradient& g) {
            return g.source == &crafter && g.repeat == r && same_gradient(g.options, spec.gradient);
          });
          if (cached == fgsm_gradients.end()) {
            const LossGradient g = input_gradient(crafter, images, y, spec.gradient);
            fgsm_gradients.push_back({&crafter, spec.gradient, r, g.grad, zero_gradient_examples(g)});
            cached = fgsm_gradients.end() - 1;
          }
          result = {fgsm_examples(spec, images, cached->grad), cached->zero_gradient_examples};
        } else {
          result = attack_batch(spec, model, images, labels, streams[a * repeats + r]);
        }
        const LossValues values = verdicts(host_logits(model, result.adversarial), y);
        append(run, values);
        run.zero_gradient_examples += result.zero_gradient_examples;
        if (r == 0 && same_as_first) first = values, first_zero_gradients = result.zero_gradient_examples;
        run.seconds += seconds_since(t0);
      }
    }
    done += static_cast<int64_t>(y.size());
    if (options.on_batch) options.on_batch(done, data.size());
  }
  report.n = static_cast<int64_t>(report.clean.correct.size());
  FLEXNN_CHECK(report.n > 0, "run_attacks: every example of the data set was skipped as unreadable");
  finish(report.clean, report.n);
  for (AttackRun& run : report.runs) finish(run, report.n);
  report.seconds = seconds_since(start);
  return report;
}

AttackReport run_attacks(nn::Module& model, const datasets::ImageDataset& data, std::span<const AttackSpec> attacks,
                         const RunOptions& options) {
  return run_attacks(model, datasets::ImageDatasetSource(data), attacks, options);
}

}  // namespace flexnn::attacks
