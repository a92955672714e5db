// The flexnn command line: one subcommand per job. A bad flag or value is a usage error (exit 2);
// a runtime failure prints "error: ..." (exit 1).
#include "engine/error.hpp"
#include "tools/cli/commands.hpp"

#include <fmt/core.h>

#include <exception>

int main(int argc, char** argv) {
  CLI::App app{"flexnn: train and evaluate flexible (convolution / max-pool) neural networks"};
  app.set_version_flag("--version", std::string("flexnn ") + FLEXNN_VERSION);
  app.require_subcommand(0, 1);
  flexnn::cli::add_train_command(app);
  flexnn::cli::add_eval_command(app);
  flexnn::cli::add_attack_command(app);
  flexnn::cli::add_reproduce_command(app);
  flexnn::cli::add_info_command(app);
  flexnn::cli::add_demo_command(app);
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      fmt::print("{}", app.help());
    }
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);  // prints help, the version, or the usage error
    return status == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
