// The CLI's subcommands: each file adds one to the app and runs it when selected.
#pragma once

#include <CLI/CLI.hpp>

namespace flexnn::cli {

// `flexnn train`: one model, the paper's recipe, a resumable run directory.
void add_train_command(CLI::App& app);
// `flexnn eval`: clean and FGSM accuracy of a checkpoint.
void add_eval_command(CLI::App& app);
// `flexnn attack`: FGSM, PGD, transfer and adaptive attacks on a checkpoint, with the worst case.
void add_attack_command(CLI::App& app);
// `flexnn reproduce table2`: the paper's Table 2.
void add_reproduce_command(CLI::App& app);
// `flexnn info`: version, build, devices, threads.
void add_info_command(CLI::App& app);
// `flexnn demo`: trains the small CNN on the synthetic bars problem, saves and reloads it.
void add_demo_command(CLI::App& app);

}  // namespace flexnn::cli
