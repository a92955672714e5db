// Options every subcommand shares: --threads, --device and --data-dir, registered the same way
// everywhere.
#pragma once

#include "engine/device.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace flexnn::cli {

struct CommonOptions {
  int threads = 0;       // 0: every core
  std::string data_dir;  // empty: the data set's default directory
  std::string device;    // empty: a GPU when there is one, else the CPU
  bool tf32 = false;     // CUDA matrix products in TF32 (tensor cores) instead of full fp32
};

void add_common_options(CLI::App* command, CommonOptions& options);
// Applies --threads to the engine's thread pool and --tf32 to the CUDA backend.
void apply_common_options(const CommonOptions& options);
// --device (checked: a CUDA device must exist), or the default device.
Device selected_device(const CommonOptions& options);
// --data-dir, or the default directory of `dataset`.
std::filesystem::path data_dir(const CommonOptions& options, const std::string& dataset);

}  // namespace flexnn::cli
