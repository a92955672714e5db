// `flexnn reproduce table2`: the paper's Table 2 on Fashion-MNIST (tools/cli/table2.hpp).
// --quick is the README's main command: a few minutes on two cores.
// `flexnn reproduce NAME`: the preset NAME.json of tools/presets (fig4a, fig4b, fig4c; see
// tools/cli/presets.hpp), one subcommand per file found there.
#include "datasets/catalog.hpp"
#include "kernels/cpu/parallel.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common_options.hpp"
#include "tools/cli/presets.hpp"
#include "tools/cli/table2.hpp"

#include <fmt/core.h>

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

struct PresetCommand {
  CommonOptions common;
  PresetOptions preset;
  std::string name, out;
  int64_t epochs = 0, seeds = 0, per_class = 0, test_per_class = 0, batch_size = 0, repeats = 0,
          attack_per_class = 0;
  CLI::Option *epochs_option = nullptr, *seeds_option = nullptr, *per_class_option = nullptr,
              *test_per_class_option = nullptr, *batch_size_option = nullptr, *repeats_option = nullptr,
              *attack_per_class_option = nullptr;
};

void run(PresetCommand& c) {
  apply_common_options(c.common);
  PresetOptions& o = c.preset;
  const auto given = [](CLI::Option* option, int64_t value) {
    return option->count() > 0 ? std::optional<int64_t>(value) : std::nullopt;
  };
  o.epochs = given(c.epochs_option, c.epochs);
  o.seeds = given(c.seeds_option, c.seeds);
  o.per_class = given(c.per_class_option, c.per_class);
  o.test_per_class = given(c.test_per_class_option, c.test_per_class);
  o.batch_size = given(c.batch_size_option, c.batch_size);
  if (const auto repeats = given(c.repeats_option, c.repeats)) o.repeats = static_cast<int>(*repeats);
  o.attack_per_class = given(c.attack_per_class_option, c.attack_per_class);
  o.out = c.out;
  o.data_dir = c.common.data_dir;
  o.device = selected_device(c.common);
  run_preset(load_preset(presets_dir() / (c.name + ".json")), o);
}

// The preset's title for --help, or why the file cannot be read (running it reports the error).
std::string preset_title(const std::string& name) {
  try {
    return load_preset(presets_dir() / (name + ".json")).title;
  } catch (const std::exception& e) {
    return fmt::format("(an invalid preset: {})", e.what());
  }
}

void add_preset_command(CLI::App* reproduce, const std::string& name) {
  auto c = std::make_shared<PresetCommand>();
  c->name = name;
  CLI::App* cmd = reproduce->add_subcommand(name, preset_title(name));
  cmd->footer(fmt::format("Preset file: {}", (presets_dir() / (name + ".json")).string()));
  PresetOptions& o = c->preset;
  cmd->add_flag("--quick", o.quick, "A short run: the preset's \"quick\" epochs, seeds and options");
  c->epochs_option = cmd->add_option("--epochs", c->epochs, "Training epochs per network (default: the preset's)")
                         ->check(CLI::Range(1, 100000));
  c->seeds_option = cmd->add_option("--seeds", c->seeds, "Networks (seeds 1..S) per variant (default: the preset's)")
                        ->check(CLI::Range(1, 1000));
  c->per_class_option = cmd->add_option("--per-class", c->per_class, "Train on this many images per class (0: all)")
                            ->check(CLI::Range(0, 1000000));
  c->test_per_class_option =
      cmd->add_option("--test-per-class", c->test_per_class, "Test on this many images per class (0: all)")
          ->check(CLI::Range(0, 1000000));
  c->batch_size_option = cmd->add_option("--batch-size", c->batch_size, "Batch size (default: the preset's)")
                             ->check(CLI::Range(1, 65536));
  c->repeats_option =
      cmd->add_option("--repeats", c->repeats, "Evaluation: runs of every attack per network (default: the preset's)")
          ->check(CLI::Range(1, 100000));
  c->attack_per_class_option =
      cmd->add_option("--attack-per-class", c->attack_per_class,
                      "Evaluation: attack this many test images per class (0: all; default: the preset's)")
          ->check(CLI::Range(0, 1000000));
  cmd->add_option("--variants", o.variants, "Variants to run, comma-separated (default: all)")->delimiter(',');
  cmd->add_option("--workers", o.workers, "Threads that read, decode and augment images")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--skip-bad", o.skip_bad, "imagenette, folder: skip (and count) unreadable image files");
  cmd->add_option("--out", c->out, fmt::format("Output directory (default runs/{0}, or runs/{0}-quick)", name));
  add_common_options(cmd, c->common);
  cmd->callback([c] { run(*c); });
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

  const std::vector<std::string> presets = preset_names();
  for (const std::string& name : presets)
    if (name != "table2") add_preset_command(reproduce, name);
  const std::string dir = presets_dir().string();
  reproduce->footer(presets.empty() ? fmt::format("No presets found in {} (set FLEXNN_PRESETS_DIR)", dir)
                                    : fmt::format("Presets from {} (FLEXNN_PRESETS_DIR to change)", dir));
}

}  // namespace flexnn::cli
