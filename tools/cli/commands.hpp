// The CLI's subcommands: each file adds one to the app and runs it when selected.
#pragma once

#include <CLI/CLI.hpp>

namespace flexnn::cli {

// `flexnn demo`: trains the small CNN on the synthetic bars problem, saves and reloads it.
void add_demo_command(CLI::App& app);

}  // namespace flexnn::cli
