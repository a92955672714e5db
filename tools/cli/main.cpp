// The flexnn command line: one subcommand per job. Library errors are printed as
// "error: ..." with a non-zero exit status.
#include "engine/error.hpp"
#include "tools/cli/commands.hpp"

#include <fmt/core.h>

#include <exception>

int main(int argc, char** argv) {
  CLI::App app{"flexnn: train and evaluate flexible (convolution / max-pool) neural networks"};
  app.set_version_flag("--version", std::string("flexnn ") + FLEXNN_VERSION);
  app.require_subcommand(0, 1);
  flexnn::cli::add_demo_command(app);
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      fmt::print("{}", app.help());
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
