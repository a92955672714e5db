// `flexnn reproduce table2`: the paper's Table 2 on Fashion-MNIST (tools/cli/table2.hpp).
// --quick is the README's main command: a few minutes on two cores.
#include "datasets/catalog.hpp"
#include "kernels/cpu/parallel.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common_options.hpp"
#include "tools/cli/table2.hpp"

namespace flexnn::cli {
namespace {

struct ReproduceCommand {
  CommonOptions common;
  Table2Options table2;
  bool quick = false;
  std::string out;
  CLI::Option *epochs = nullptr, *seeds = nullptr;
};

void run(ReproduceCommand& c) {
  apply_common_options(c.common);
  Table2Options& o = c.table2;
  if (c.quick) {  // explicit --epochs / --seeds still win
    if (c.epochs->count() == 0) o.epochs = 3;
    if (c.seeds->count() == 0) o.seeds = 2;
    o.label = "quick";
  }
  o.device = selected_device(c.common);
  o.out = c.out.empty() ? (c.quick ? "runs/table2-quick" : "runs/table2") : c.out;
  const std::filesystem::path dir = data_dir(c.common, "fmnist");
  run_table2(o, datasets::load_dataset("fmnist", dir, "train"), datasets::load_dataset("fmnist", dir, "test"));
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
  auto c = std::make_shared<ReproduceCommand>();
  CLI::App* reproduce = app.add_subcommand("reproduce", "Reproduce an experiment of the paper");
  reproduce->require_subcommand(1);
  CLI::App* cmd = reproduce->add_subcommand(
      "table2", "Table 2: baseline vs flexible fmnist-small, clean and FGSM accuracy, mean ± SEM over seeds");
  Table2Options& o = c->table2;
  c->epochs = cmd->add_option("--epochs", o.epochs, "Training epochs per network")
                  ->check(CLI::Range(1, 100000))
                  ->capture_default_str();
  c->seeds = cmd->add_option("--seeds", o.seeds, "Networks (seeds 1..S) per variant")
                 ->check(CLI::Range(1, 1000))
                 ->capture_default_str();
  cmd->add_flag("--quick", c->quick, "A few minutes: 3 epochs x 2 seeds (unless --epochs / --seeds say otherwise)");
  cmd->add_option("--per-class", o.per_class, "Train on this many images per class (0: all)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--eps", o.eps, "FGSM strength")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--eps-space", o.eps_space, "pixel or normalized (the authors' units)")
      ->check(CLI::IsMember({"pixel", "normalized"}))
      ->capture_default_str();
  cmd->add_option("--variants", o.variants, "Variants to run, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"none", "uniform", "standard", "reverse", "random"}))
      ->capture_default_str();
  cmd->add_option("--out", c->out, "Output directory (default runs/table2, or runs/table2-quick)");
  add_common_options(cmd, c->common);
  cmd->callback([c] { run(*c); });
}

}  // namespace flexnn::cli
