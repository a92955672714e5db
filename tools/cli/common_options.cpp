// The shared options' registration and application.
#include "tools/cli/common_options.hpp"

#include "datasets/catalog.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cuda/gemm.hpp"

namespace flexnn::cli {

void add_common_options(CLI::App* command, CommonOptions& options) {
  command->add_option("--threads", options.threads, "CPU threads (0: every core)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  command->add_option("--device", options.device,
                      "cpu or cuda (default: cuda when a GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda", "cuda:0"}));
  command->add_flag("--tf32", options.tf32,
                    "On CUDA, compute matrix products and convolutions in TF32 on tensor cores (faster, about 3 "
                    "decimal digits); default: full fp32");
  command->add_option("--data-dir", options.data_dir,
                      "Directory of the data set (default: where Debian installs it, e.g. "
                      "/usr/share/datasets/fashion-mnist)");
}

void apply_common_options(const CommonOptions& options) {
  if (options.threads > 0) cpu::set_num_threads(options.threads);
  cuda::set_allow_tf32(options.tf32);
}

Device selected_device(const CommonOptions& options) {
  return options.device.empty() ? default_device() : parse_device(options.device);
}

std::filesystem::path data_dir(const CommonOptions& options, const std::string& dataset) {
  return options.data_dir.empty() ? datasets::default_data_dir(dataset) : std::filesystem::path(options.data_dir);
}

}  // namespace flexnn::cli
