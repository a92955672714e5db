// Tests of the attack runner and the robustness report: every run judged by the target's verdict
// on the attack's examples (FGSM sweeps, PGD and transfer reproduced from their Philox streams);
// the worst case as the per-example minimum over runs; accuracies with SEM over repeats; the
// warnings firing when they should (zero gradients, a randomised model, a gradient-free or transfer
// attack beating the white-box ones) and not otherwise; the suite reaching the analytic worst case
// of a linear classifier; named attacks, the adaptive suite's composition, and errors.
#include <catch2/catch.hpp>

#include "attack_fixtures.hpp"
#include "attacks/worst_case.hpp"
#include "test_helpers.hpp"

#include <algorithm>
#include <cmath>

namespace flexnn {
namespace {

using Catch::Matchers::Contains;
using testing::error_message;

// logits = W·sign(x − 0.5) + b: its input gradient is 0 everywhere (sign's derivative), a model
// that masks its gradients completely.
class SignModel : public nn::Module {
 public:
  SignModel(const Tensor& w, const Tensor& b) : weight(w), bias(b) {}
  Tensor forward(const Tensor& x) override { return ops::linear(ops::sign(x.flatten(1) - 0.5f), weight, bias); }
  Tensor weight, bias;
};

// logits = w·relu(Σx − t) + b: the input gradient is exactly 0 for examples with Σx < t.
class ReluGate : public nn::Module {
 public:
  ReluGate(float threshold, const Tensor& w) : threshold_(threshold), weight(w) {}
  Tensor forward(const Tensor& x) override {
    return ops::relu(ops::sum(x.flatten(1), {1}, true) - threshold_) * weight;  // [N, 1] * [K] -> [N, K]
  }
  float threshold_;
  Tensor weight;
};

std::vector<int64_t> predictions(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  const Tensor p = ops::argmax(model(x), 1);
  return {p.data<int64_t>(), p.data<int64_t>() + p.numel()};
}

// A Philox stream as run_attacks gives run `index`.
Generator stream(uint64_t seed, uint64_t index) {
  Generator g;
  g.set_state(seed, index << 40);
  return g;
}

std::vector<uint8_t> verdicts(nn::Module& model, const Tensor& x, const std::vector<int64_t>& y) {
  const std::vector<int64_t> p = predictions(model, x);
  std::vector<uint8_t> out;
  for (size_t i = 0; i < y.size(); ++i) out.push_back(p[i] == y[i]);
  return out;
}

bool has_warning(const attacks::WorstCase& w, attacks::WarningKind kind) {
  return std::any_of(w.warnings.begin(), w.warnings.end(), [&](const attacks::Warning& x) { return x.kind == kind; });
}

attacks::AttackRun hand_run(const char* name, attacks::AttackFamily family, std::vector<uint8_t> correct,
                            std::vector<float> margin, int repeat = 0) {
  attacks::AttackRun run;
  run.name = name, run.family = family, run.repeat = repeat, run.correct = std::move(correct);
  run.margin = std::move(margin);
  run.accuracy = 100.0 * double(std::count(run.correct.begin(), run.correct.end(), 1)) / double(run.correct.size());
  return run;
}

}  // namespace

TEST_CASE("the worst case is the per-example minimum over the clean run and every attack run", "[attacks][suite]") {
  attacks::AttackReport report;
  report.n = 5;
  report.clean = hand_run("clean", attacks::AttackFamily::white_box, {1, 1, 1, 0, 1}, {2.0f, 1.5f, 0.3f, -0.2f, 1.0f});
  report.runs = {
      hand_run("pgd", attacks::AttackFamily::white_box, {1, 0, 1, 0, 1}, {1.0f, -0.1f, 0.2f, -0.5f, 0.8f}),
      hand_run("square", attacks::AttackFamily::gradient_free, {1, 1, 0, 0, 1}, {1.2f, 0.4f, -0.3f, -0.1f, 0.9f})};
  const attacks::WorstCase w = attacks::worst_case(report);
  CHECK(w.robust == std::vector<uint8_t>{1, 0, 0, 0, 1});
  CHECK(w.margin == std::vector<float>{1.0f, -0.1f, -0.3f, -0.5f, 0.8f});
  CHECK(w.weakest == std::vector<int>{0, 0, 1, 0, 0});
  CHECK(w.accuracy == 40.0);
  CHECK(w.warnings.empty());  // equal accuracies: the gradient-free attack does not beat PGD

  // Square now breaks example 0 too: below every white-box accuracy, by one example only it broke.
  report.runs[1] =
      hand_run("square", attacks::AttackFamily::gradient_free, {0, 1, 0, 0, 1}, {-1.0f, 0.4f, -0.3f, -0.1f, 0.9f});
  const attacks::WorstCase w2 = attacks::worst_case(report);
  CHECK(w2.robust == std::vector<uint8_t>{0, 0, 0, 0, 1});
  CHECK(w2.accuracy == 20.0);
  REQUIRE(w2.warnings.size() == 1);
  CHECK(w2.warnings[0].kind == attacks::WarningKind::gradient_free_beats_gradient);
  CHECK_THAT(w2.warnings[0].message, Contains("square") && Contains("40.00%") && Contains("60.00%") &&
                                         Contains("breaks 2 examples"));

  const nlohmann::json j = attacks::report_json(report, true);
  CHECK(j["n"] == 5);
  CHECK(j["clean_accuracy"] == 80.0);
  CHECK(j["runs"].size() == 2);
  CHECK(j["runs"][1]["family"] == "gradient-free");
  CHECK(j["attacks"][0]["name"] == "pgd");
  CHECK(j["attacks"][0]["mean"] == 60.0);
  REQUIRE(j["worst_case"].size() == 1);
  CHECK(j["worst_case"][0]["accuracy"] == 20.0);
  CHECK(j["worst_case"][0]["warnings"][0]["kind"] == "gradient-free-beats-gradient");
  CHECK(j["per_example"]["worst_case"][0]["robust"] == std::vector<int>{0, 0, 0, 0, 1});
  CHECK_FALSE(attacks::report_json(report).contains("per_example"));

  report.runs[1].correct.pop_back();
  CHECK_THAT(error_message([&] { attacks::worst_case(report); }), Contains("square") && Contains("4 verdicts"));
}

TEST_CASE("a report with several strengths gets one worst case per strength", "[attacks][suite]") {
  attacks::AttackReport report;
  report.n = 4;
  report.clean = hand_run("clean", attacks::AttackFamily::white_box, {1, 1, 1, 0}, {2.0f, 1.0f, 0.5f, -1.0f});
  report.runs = {hand_run("fgsm", attacks::AttackFamily::white_box, {1, 1, 0, 0}, {1.5f, 0.5f, -0.1f, -1.2f}),
                 hand_run("pgd", attacks::AttackFamily::white_box, {1, 0, 1, 0}, {1.0f, -0.2f, 0.1f, -1.5f}),
                 hand_run("fgsm", attacks::AttackFamily::white_box, {0, 1, 1, 0}, {-0.5f, 0.2f, 0.3f, -2.0f})};
  report.runs[0].eps = report.runs[1].eps = 0.1f;
  report.runs[2].eps = 0.3f;
  CHECK(attacks::run_eps(report) == std::vector<float>{0.1f, 0.3f});
  CHECK(attacks::runs_at_eps(report, 0.1f).runs.size() == 2);
  const std::vector<attacks::WorstCaseAtEps> worst = attacks::worst_case_per_eps(report);
  REQUIRE(worst.size() == 2);
  CHECK(worst[0].eps == 0.1f);
  CHECK(worst[0].worst.robust == std::vector<uint8_t>{1, 0, 0, 0});  // fgsm and pgd at 0.1, not fgsm at 0.3
  CHECK(worst[1].worst.robust == std::vector<uint8_t>{0, 1, 1, 0});
  CHECK(worst[1].worst.margin == std::vector<float>{-0.5f, 0.2f, 0.3f, -2.0f});
  const nlohmann::json j = attacks::report_json(report, true);
  REQUIRE(j["worst_case"].size() == 2);
  CHECK(j["worst_case"][0]["accuracy"] == 25.0);
  CHECK(j["worst_case"][1]["accuracy"] == 50.0);
  CHECK(j["per_example"]["worst_case"][1]["robust"] == std::vector<int>{0, 1, 1, 0});
}

TEST_CASE("summaries average the repeats of each attack with their standard error", "[attacks][suite]") {
  attacks::AttackReport report;
  report.n = 10;
  for (int r = 0; r < 3; ++r) {
    report.runs.push_back(hand_run("fgsm", attacks::AttackFamily::white_box, {}, {}, r));
    report.runs.back().accuracy = 50.0 + 10.0 * r;
    report.runs.back().eps = 0.1f;
  }
  for (int r = 0; r < 3; ++r) {
    report.runs.push_back(hand_run("fgsm", attacks::AttackFamily::white_box, {}, {}, r));
    report.runs.back().accuracy = 20.0;
    report.runs.back().eps = 0.3f;
  }
  report.runs.push_back(hand_run("pgd", attacks::AttackFamily::white_box, {}, {}, 0));
  report.runs.back().accuracy = 12.5;
  const std::vector<attacks::AccuracySummary> s = attacks::summarize(report);
  REQUIRE(s.size() == 3);
  CHECK(s[0].name == "fgsm");
  CHECK(s[0].eps == 0.1f);
  CHECK(s[0].repeats == 3);
  CHECK(s[0].mean == Approx(60.0));
  CHECK(s[0].sem == Approx(10.0 / std::sqrt(3.0)));  // sample sd 10 over √3
  CHECK(s[1].eps == 0.3f);
  CHECK(s[1].sem == 0.0);
  CHECK(s[2].name == "pgd");
  CHECK(s[2].repeats == 1);
  CHECK(s[2].mean == 12.5);
  CHECK(s[2].sem == 0.0);
}

TEST_CASE("run_attacks judges every attack by the target's verdict on the attack's examples", "[attacks][suite]") {
  constexpr int64_t N = 23, S = 6, K = 3;
  Generator gen(80);
  testing::SmallNet target(S, K, gen), source(S, K, gen);
  target.eval(), source.eval();
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < N; ++i) labels.push_back(i % K);
  const datasets::ImageDataset data = testing::dataset_of(Tensor::rand({N, 1, S, S}, gen), labels, K);
  const Tensor x = testing::images_of(data);
  const Tensor y = Tensor::from_indices(labels, {N});

  const attacks::ThreatModel threat{.eps = 0.1f};
  const std::vector<float> sweep{0.05f, 0.2f};
  std::vector<attacks::AttackSpec> specs = attacks::fgsm_sweep(sweep, threat);
  specs.push_back(attacks::named_attack("pgd", threat, {.pgd = {.steps = 3, .step_size = 0.05f}}));
  specs.push_back(attacks::named_attack("transfer", threat, {.pgd = {.steps = 3, .step_size = 0.05f}}, &source));
  attacks::RunOptions options;
  options.batch_size = 10, options.seed = 4;  // batches of 10, 10 and 3
  int64_t progress_calls = 0, last_done = 0;
  options.on_batch = [&](int64_t done, int64_t total) {
    ++progress_calls, last_done = done;
    CHECK(total == N);
  };
  const attacks::AttackReport report = attacks::run_attacks(target, data, specs, options);
  CHECK(progress_calls == 3);
  CHECK(last_done == N);
  REQUIRE(report.n == N);
  REQUIRE(report.runs.size() == 4);
  CHECK(report.clean.correct == verdicts(target, x, labels));
  CHECK_FALSE(report.randomized_model);

  for (size_t e = 0; e < sweep.size(); ++e) {
    CAPTURE(sweep[e]);
    const Tensor adv = attacks::fgsm(target, x, y, std::vector<float>{sweep[e]});
    CHECK(report.runs[e].correct == verdicts(target, adv, labels));
    CHECK(report.runs[e].name == "fgsm");
    CHECK(report.runs[e].eps == sweep[e]);
  }
  // PGD and transfer, batch by batch on their own streams (run index 2 and 3).
  Generator pgd_stream = stream(4, 2), transfer_stream = stream(4, 3);
  std::vector<uint8_t> pgd_verdicts, transfer_verdicts;
  for (int64_t start = 0; start < N; start += 10) {
    const int64_t end = std::min<int64_t>(start + 10, N);
    const std::vector<int64_t> lb(labels.begin() + start, labels.begin() + end);
    const Tensor xb = ops::slice(x, 0, start, end), yb = Tensor::from_indices(lb, {end - start});
    const attacks::PgdOptions o{.steps = 3, .step_size = 0.05f};
    for (uint8_t v : verdicts(target, attacks::pgd(target, xb, yb, threat, o, {}, pgd_stream).adversarial, lb))
      pgd_verdicts.push_back(v);
    for (uint8_t v : verdicts(target, attacks::pgd(source, xb, yb, threat, o, {}, transfer_stream).adversarial, lb))
      transfer_verdicts.push_back(v);
  }
  CHECK(report.runs[2].correct == pgd_verdicts);
  CHECK(report.runs[3].correct == transfer_verdicts);
  CHECK(report.runs[3].family == attacks::AttackFamily::transfer);
  CHECK(report.runs[2].accuracy == Approx(100.0 * std::count(pgd_verdicts.begin(), pgd_verdicts.end(), 1) / N));
  CHECK(report.runs[2].accuracy < report.clean.accuracy);  // the attack did something

  const attacks::WorstCase w = attacks::worst_case(report);
  for (int64_t i = 0; i < N; ++i) {
    bool robust = report.clean.correct[i];
    float lowest = report.clean.margin[i];
    for (const attacks::AttackRun& run : report.runs)
      robust = robust && run.correct[i], lowest = std::min(lowest, run.margin[i]);
    CHECK(w.robust[i] == robust);
    CHECK(w.margin[i] == lowest);
  }
}

TEST_CASE("the suite's worst case breaks exactly the analytically breakable examples of a linear classifier",
          "[attacks][suite]") {
  constexpr int64_t N = 60, S = 4, D = S * S, K = 4;
  Generator gen(90);
  const std::vector<float> w = Tensor::randn({K, D}, gen, 0.0f, 0.5f).to_vector();
  const std::vector<float> b = Tensor::randn({K}, gen, 0.0f, 0.2f).to_vector();
  testing::LinearClassifier model(Tensor::from_vector(w, {K, D}), Tensor::from_vector(b, {K}));
  model.eval();
  const Tensor raw = Tensor::rand({N, 1, S, S}, gen);
  const datasets::ImageDataset data = testing::dataset_of(raw, predictions(model, raw), K);
  const Tensor x = testing::images_of(data);
  const std::vector<float> xv = x.to_vector();
  const float eps = 0.1f;
  attacks::NamedAttackOptions options;
  options.apgd.iterations = 50, options.square.queries = 1000;
  const std::vector<attacks::AttackSpec> suite = attacks::adaptive_suite(model, {.eps = eps}, options);
  const attacks::AttackReport report = attacks::run_attacks(model, data, suite);
  const attacks::WorstCase worst = attacks::worst_case(report);
  int clear = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double analytic =
        testing::linf_worst_margin({xv.begin() + i * D, xv.begin() + (i + 1) * D}, w, b, data.labels[i], eps);
    CAPTURE(i, analytic, worst.margin[i]);
    CHECK(worst.margin[i] >= analytic - 1e-5);
    if (std::abs(analytic) > 0.02) {
      ++clear;
      CHECK(bool(worst.robust[i]) == (analytic > 0));
    }
  }
  CHECK(clear > N / 2);
}

TEST_CASE("the report warns of zero gradients, randomised models and beaten gradient attacks, and only then",
          "[attacks][suite]") {
  constexpr int64_t N = 30, S = 4, D = S * S, K = 3;
  Generator gen(100);
  const Tensor raw = Tensor::rand({N, 1, S, S}, gen);
  const attacks::ThreatModel threat{.eps = 0.2f};
  attacks::NamedAttackOptions options;
  options.square.queries = 300;
  options.pgd.random_start = false, options.pgd.step_size = 0.05f;
  const std::vector<attacks::AttackSpec> white_and_free{attacks::named_attack("pgd", threat, options),
                                                        attacks::named_attack("square", threat, options)};

  SECTION("no warning for a smooth deterministic model") {
    testing::LinearClassifier model(Tensor::randn({2, D}, gen), Tensor::zeros({2}));
    const datasets::ImageDataset data = testing::dataset_of(raw, predictions(model, raw), 2);
    const attacks::AttackReport report = attacks::run_attacks(model, data, white_and_free);
    CHECK_FALSE(report.randomized_model);
    CHECK(report.runs[0].zero_gradient_examples == 0);
    CHECK(attacks::worst_case(report).warnings.empty());
  }
  SECTION("zero gradients, counted per example") {
    // Σx over 16 pixels ~ 8; a threshold of 8 zeroes the gradient of about half the examples.
    ReluGate model(8.0f, Tensor::from_vector({1.0f, -1.0f, 0.5f}, {K}));
    const datasets::ImageDataset data = testing::dataset_of(raw, std::vector<int64_t>(N, 0), K);
    int64_t expected = 0;
    const std::vector<float> xv = testing::images_of(data).to_vector();
    for (int64_t i = 0; i < N; ++i) {
      float sum = 0;
      for (int64_t e = 0; e < D; ++e) sum += xv[i * D + e];
      expected += sum < 8.0f;
    }
    REQUIRE(expected > 3);
    REQUIRE(expected < N - 3);
    const std::vector<attacks::AttackSpec> specs{attacks::named_attack("fgsm", threat),
                                                 attacks::named_attack("pgd", threat, options)};
    const attacks::AttackReport report = attacks::run_attacks(model, data, specs);
    CHECK(report.runs[0].zero_gradient_examples == expected);
    CHECK(report.runs[1].zero_gradient_examples == expected);
    const attacks::WorstCase w = attacks::worst_case(report);
    REQUIRE(has_warning(w, attacks::WarningKind::zero_gradients));
    CHECK_THAT(w.warnings[0].message, Contains("fgsm") && Contains(std::to_string(expected) + " of 30"));
    CHECK(std::count_if(w.warnings.begin(), w.warnings.end(),
                        [](const attacks::Warning& x) { return x.kind == attacks::WarningKind::zero_gradients; }) == 2);
  }
  SECTION("a randomised model") {
    testing::FlexibleNet model(S, K, nn::FlexMode::random, 50.0f, gen);
    const datasets::ImageDataset data = testing::dataset_of(raw, predictions(model, raw), K);
    const std::vector<attacks::AttackSpec> fgsm{attacks::named_attack("fgsm", threat)};
    const attacks::AttackReport report = attacks::run_attacks(model, data, fgsm);
    CHECK(report.randomized_model);
    CHECK(has_warning(attacks::worst_case(report), attacks::WarningKind::randomized_model));
    testing::FlexibleNet fixed(S, K, nn::FlexMode::standard, 50.0f, gen);
    CHECK_FALSE(attacks::run_attacks(fixed, data, fgsm).randomized_model);
  }
  SECTION("masked gradients: the gradient-free and the transfer attack beat white-box PGD") {
    const Tensor w = Tensor::randn({K, D}, gen);
    SignModel model(w, Tensor::zeros({K}));
    testing::LinearClassifier surrogate(w, Tensor::zeros({K}));  // the same weights, without the sign
    // Pixels near 0.5, so that ε = 0.2 can flip their signs.
    const Tensor near_half = raw * 0.3f + 0.35f;
    const datasets::ImageDataset data = testing::dataset_of(near_half, predictions(model, near_half), K);
    std::vector<attacks::AttackSpec> specs = white_and_free;
    specs.push_back(attacks::named_attack("transfer", threat, options, &surrogate));
    const attacks::AttackReport report = attacks::run_attacks(model, data, specs);
    CHECK(report.runs[0].accuracy == report.clean.accuracy);  // PGD cannot move
    CHECK(report.runs[0].zero_gradient_examples == N);
    CHECK(report.runs[1].accuracy < report.clean.accuracy);
    CHECK(report.runs[2].accuracy < report.clean.accuracy);
    const attacks::WorstCase wc = attacks::worst_case(report);
    CHECK(has_warning(wc, attacks::WarningKind::zero_gradients));
    CHECK(has_warning(wc, attacks::WarningKind::gradient_free_beats_gradient));
    CHECK(has_warning(wc, attacks::WarningKind::transfer_beats_white_box));
    CHECK_FALSE(has_warning(wc, attacks::WarningKind::randomized_model));
  }
}

TEST_CASE("random-mask models: repeats give different runs, EOT attacks in the suite", "[attacks][suite]") {
  constexpr int64_t N = 20, S = 6, K = 3;
  Generator gen(110);
  testing::FlexibleNet model(S, K, nn::FlexMode::random, 50.0f, gen);
  const Tensor raw = Tensor::rand({N, 1, S, S}, gen);
  const datasets::ImageDataset data = testing::dataset_of(raw, predictions(model, raw), K);
  attacks::RunOptions options;
  options.repeats = 4;
  const std::vector<attacks::AttackSpec> specs{attacks::named_attack("fgsm", {.eps = 0.05f})};
  const attacks::AttackReport report = attacks::run_attacks(model, data, specs, options);
  REQUIRE(report.runs.size() == 4);
  bool differ = false;
  for (int r = 1; r < 4; ++r) differ = differ || report.runs[r].margin != report.runs[0].margin;
  CHECK(differ);  // new masks every run
  const std::vector<attacks::AccuracySummary> s = attacks::summarize(report);
  REQUIRE(s.size() == 1);
  CHECK(s[0].repeats == 4);
  double mean = 0;
  for (const attacks::AttackRun& run : report.runs) mean += run.accuracy / 4;
  CHECK(s[0].mean == Approx(mean));
}

TEST_CASE("named attacks and the adaptive suite", "[attacks][suite]") {
  Generator gen(120);
  const attacks::ThreatModel threat{.eps = 0.03f};
  attacks::NamedAttackOptions options;
  options.eot_samples = 7, options.bpda_sharpness = 3.0f;
  testing::SmallNet plain(6, 3, gen);
  const auto names = [](const std::vector<attacks::AttackSpec>& specs) {
    std::vector<std::string> out;
    for (const attacks::AttackSpec& s : specs) out.push_back(s.name);
    return out;
  };
  CHECK(names(attacks::adaptive_suite(plain, threat, options)) ==
        std::vector<std::string>{"pgd", "apgd-ce", "apgd-dlr", "square"});
  testing::FlexibleNet gated(6, 3, nn::FlexMode::standard, 50.0f, gen);
  const std::vector<attacks::AttackSpec> g = attacks::adaptive_suite(gated, threat, options, &plain);
  CHECK(names(g) == std::vector<std::string>{"pgd", "bpda-pgd", "apgd-ce", "apgd-dlr", "square", "transfer"});
  CHECK(g[1].gradient.bpda_sharpness == 3.0f);
  CHECK(g[5].source == &plain);
  CHECK(g[5].family() == attacks::AttackFamily::transfer);
  CHECK(g[4].family() == attacks::AttackFamily::gradient_free);
  CHECK(g[3].gradient.loss == attacks::AttackLoss::dlr);
  testing::FlexibleNet random(6, 3, nn::FlexMode::random, 50.0f, gen);
  const std::vector<attacks::AttackSpec> r = attacks::adaptive_suite(random, threat, options);
  CHECK(names(r) == std::vector<std::string>{"pgd", "eot-pgd", "eot-apgd-ce", "eot-apgd-dlr", "square"});
  for (size_t i = 1; i < 4; ++i) CHECK(r[i].gradient.eot_samples == 7);
  for (const attacks::AttackSpec& s : r) CHECK(s.threat.eps == 0.03f);

  CHECK(attacks::attack_names().size() == 8);
  for (const std::string& name : attacks::attack_names()) {
    CAPTURE(name);
    CHECK(attacks::named_attack(name, threat, options, name == "transfer" ? &plain : nullptr).name == name);
  }
  CHECK_THAT(error_message([&] { attacks::named_attack("cw", threat); }),
             Contains("'cw'") && Contains("apgd-dlr") && Contains("square"));
  CHECK_THAT(error_message([&] { attacks::named_attack("transfer", threat); }), Contains("source model"));
  CHECK_THAT(error_message([&] { attacks::named_attack("pgd", threat, options, &plain); }), Contains("white-box"));
}

TEST_CASE("run_attacks rejects an empty data set and bad options", "[attacks][suite]") {
  Generator gen(130);
  testing::SmallNet model(4, 3, gen);
  const datasets::ImageDataset data = testing::dataset_of(Tensor::rand({4, 1, 4, 4}, gen), {0, 1, 2, 0}, 3);
  const std::vector<attacks::AttackSpec> specs{attacks::named_attack("fgsm", {.eps = 0.1f})};
  datasets::ImageDataset empty = data;
  empty.labels.clear(), empty.pixels.clear();
  CHECK_THAT(error_message([&] { attacks::run_attacks(model, empty, specs); }), Contains("empty"));
  attacks::RunOptions bad;
  bad.batch_size = 0;
  CHECK_THAT(error_message([&] { attacks::run_attacks(model, data, specs, bad); }), Contains("batch size"));
  bad.batch_size = 10, bad.repeats = 0;
  CHECK_THAT(error_message([&] { attacks::run_attacks(model, data, specs, bad); }), Contains("repeats"));
}

}  // namespace flexnn
