// Options every subcommand shares: --threads and --data-dir, registered the same way everywhere.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace flexnn::cli {

struct CommonOptions {
  int threads = 0;       // 0: every core
  std::string data_dir;  // empty: the data set's default directory
};

void add_common_options(CLI::App* command, CommonOptions& options);
// Applies --threads to the engine's thread pool.
void apply_threads(const CommonOptions& options);
// --data-dir, or the default directory of `dataset`.
std::filesystem::path data_dir(const CommonOptions& options, const std::string& dataset);

}  // namespace flexnn::cli
