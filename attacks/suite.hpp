// Attacks by name, and running a list of them over a data set in one pass: each batch is loaded
// once, classified clean, then attacked by every attack (each repeated R times), and the target
// model's verdict on every adversarial example is kept per example, for accuracies with SEM over
// repeats and the per-example worst case (attacks/worst_case.hpp).
//
// Every attack is judged the same way, as AutoAttack does: one forward of the target model on the
// examples the attack returns. A transfer attack crafts its examples on a source model and is
// judged on the target. The attacks (see their headers):
//   fgsm       one signed step of ε (the paper's protocol; attacks/fgsm.hpp)
//   pgd        TRADES' PGD-20 (attacks/pgd.hpp)
//   transfer   PGD on the source model, judged on the target (black box)
//   eot-pgd    PGD on gradients averaged over K forward passes (random masks)
//   bpda-pgd   PGD through the flexible gates' softer-sharpness backward (saturated gates)
//   apgd-ce, apgd-dlr   APGD with the cross-entropy or the DLR loss (attacks/apgd.hpp)
//   square     the gradient-free Square attack, L∞ (attacks/square.hpp)
#pragma once

#include "attacks/apgd.hpp"
#include "attacks/pgd.hpp"
#include "attacks/square.hpp"
#include "datasets/image_dataset.hpp"
#include "datasets/image_source.hpp"

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flexnn::attacks {

struct FgsmOptions {};  // one step of ε along the gradient's sign (L2: along the normalised gradient)
using AttackMethod = std::variant<FgsmOptions, PgdOptions, ApgdOptions, SquareOptions>;

// How an attack sees the target model, for the report's warnings.
enum class AttackFamily { white_box, transfer, gradient_free };
std::string_view attack_family_name(AttackFamily family);

struct AttackSpec {
  std::string name{};  // as reported
  ThreatModel threat{};
  AttackMethod method = PgdOptions{};
  GradientOptions gradient{};    // gradient attacks: the loss, EOT, BPDA
  nn::Module* source = nullptr;  // transfer: craft on this model (not owned), judge on the target
  AttackFamily family() const;
};

// The settings the named attacks take (defaults: TRADES' PGD, AutoAttack's APGD and Square).
struct NamedAttackOptions {
  PgdOptions pgd{};
  ApgdOptions apgd{};
  SquareOptions square{};
  int eot_samples = 10;         // eot-pgd and the suite's EOT attacks
  float bpda_sharpness = 5.0f;  // bpda-pgd: the gates' backward sharpness (the layers' own is 50)
};

// fgsm, pgd, transfer, eot-pgd, bpda-pgd, apgd-ce, apgd-dlr, square.
const std::vector<std::string>& attack_names();
// The attack `name` at the threat model's ε; transfer needs a source model.
AttackSpec named_attack(std::string_view name, const ThreatModel& threat, const NamedAttackOptions& options = {},
                        nn::Module* source = nullptr);
// The adaptive suite for a model, all at the same ε: pgd, apgd-ce, apgd-dlr and square; bpda-pgd
// when a flexible layer has a threshold gate; for a randomised model (a flexible layer in random
// mode) eot-pgd, and APGD-CE / APGD-DLR on EOT gradients (eot-apgd-ce, eot-apgd-dlr) in place of
// the plain ones; transfer when a source model is given.
std::vector<AttackSpec> adaptive_suite(nn::Module& model, const ThreatModel& threat,
                                       const NamedAttackOptions& options = {}, nn::Module* source = nullptr);
// FGSM at each ε of a sweep, named "fgsm" (their runs share one input gradient per batch and repeat).
std::vector<AttackSpec> fgsm_sweep(std::span<const float> eps, const ThreatModel& threat,
                                   const GradientOptions& gradient = {});

struct RunOptions {
  int64_t batch_size = 100;
  int repeats = 1;     // runs of each attack (new random starts, and new masks for a random model;
                       // FGSM on a deterministic model has nothing random: its repeats copy its first run)
  uint64_t seed = 0;   // the attacks' random draws: a Philox stream per attack and repeat
  int64_t workers = 1;  // threads that load (decode) each batch's examples; results do not depend on it
  std::function<void(int64_t done, int64_t total)> on_batch{};  // progress, after each batch
};

// One run of one attack (or the clean evaluation) over the data set.
struct AttackRun {
  std::string name{};
  float eps = 0;  // in the threat model's units
  Norm norm = Norm::linf;
  AttackFamily family = AttackFamily::white_box;
  int repeat = 0;
  std::vector<uint8_t> correct{};  // per example: the target's first maximum is the label
  std::vector<float> margin{};     // per example: z_y − max_{i≠y} z_i on the adversarial example
  int64_t zero_gradient_examples = 0;  // examples whose first input gradient was exactly 0
  double accuracy = 0;                 // percent of the data set
  double seconds = 0;
};

struct AttackReport {
  int64_t n = 0;
  AttackRun clean;              // "clean": the unperturbed inputs
  std::vector<AttackRun> runs;  // attack-major: attack 0's repeats 0 … R−1, then attack 1's, …
  bool randomized_model = false;  // two forwards of the same inputs gave different outputs
  double seconds = 0;
};

// Puts the model (and every source) in evaluation mode and leaves it there. Examples are taken in
// index order; a source told to skip unreadable files leaves those out of the report.
AttackReport run_attacks(nn::Module& model, const datasets::ImageSource& data, std::span<const AttackSpec> attacks,
                         const RunOptions& options = {});
// The same over an in-memory data set (through datasets::ImageDatasetSource).
AttackReport run_attacks(nn::Module& model, const datasets::ImageDataset& data, std::span<const AttackSpec> attacks,
                         const RunOptions& options = {});

// One attack on one batch: adversarial examples of x [N, C, H, W] (labels int64 [N]) for the
// target model, crafted on the spec's source model if it has one; random draws from gen.
AttackBatch attack_batch(const AttackSpec& spec, nn::Module& target, const Tensor& x, const Tensor& labels,
                         Generator& gen);

// AutoAttack's randomisation check: two forwards of x, different predictions or L1-normalised
// logits that differ by more than 1e-4 anywhere.
bool is_randomized(nn::Module& model, const Tensor& x);

}  // namespace flexnn::attacks
