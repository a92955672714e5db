// The flexnn command line: one subcommand per job.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

int main(int argc, char** argv) {
  CLI::App app{"flexnn: train and evaluate flexible (convolution / max-pool) neural networks"};
  app.set_version_flag("--version", std::string("flexnn ") + FLEXNN_VERSION);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
