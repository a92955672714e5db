// `flexnn info`: the version, build options, devices and threads.
#include "kernels/cpu/parallel.hpp"
#include "kernels/cuda/memory.hpp"
#include "models/registry.hpp"
#include "tools/cli/commands.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <thread>

namespace flexnn::cli {

void add_info_command(CLI::App& app) {
  auto threads = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("info", "Print the version, build options, devices and threads");
  cmd->add_option("--threads", *threads, "CPU threads (0: every core)")->check(CLI::Range(0, 1024));
  cmd->callback([threads] {
    if (*threads > 0) cpu::set_num_threads(*threads);
    fmt::print("flexnn {}\n", FLEXNN_VERSION);
#if defined(__AVX512F__)
    const char* simd = "AVX-512";
#elif defined(__AVX2__)
    const char* simd = "AVX2";
#else
    const char* simd = "portable (Eigen)";
#endif
    fmt::print("build     {} {}, compiler {}, SIMD {}\n",
#ifdef NDEBUG
               "release",
#else
               "debug",
#endif
               "C++20", __VERSION__, simd);
    if (cuda::is_emulated()) {
      fmt::print("devices   cpu; cuda = the CPU emulation of CUDA (for testing the backend; never the default)\n");
    } else if (cuda::device_count() > 0) {
      fmt::print("devices   cpu, cuda ({}; the default)\n", cuda::device_name(0));
    } else {
      fmt::print("devices   cpu (CUDA backend built, no GPU found)\n");
    }
    fmt::print("threads   {} (of {} hardware threads; --threads or FLEXNN_NUM_THREADS)\n", cpu::num_threads(),
               std::thread::hardware_concurrency());
    fmt::print("models    {}\n", fmt::join(models::model_names(), ", "));
  });
}

}  // namespace flexnn::cli
