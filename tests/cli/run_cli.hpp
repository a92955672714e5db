// Runs the flexnn command line as a real process (its path comes from CMake as FLEXNN_CLI_PATH) and
// captures what it prints, for the tests that check the CLI as a user meets it.
#pragma once

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace flexnn::testing {

struct CliResult {
  int status;          // the exit status, or -1 if the process did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `flexnn <args>` through the shell (so `args` may redirect or quote).
inline CliResult run_cli(const std::string& args) {
  const std::string command = std::string(FLEXNN_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Runs `flexnn <args>` and requires it to succeed, showing the command and its output otherwise.
inline CliResult run_ok(const std::string& args) {
  CliResult r = run_cli(args);
  INFO(args << "\n" << r.output);
  REQUIRE(r.status == 0);
  return r;
}

}  // namespace flexnn::testing
