// The flexnn command line as a user meets it: --version, --help, bad flags and the demo, run as a
// real process (the binary's path comes from CMake).
#include <catch2/catch.hpp>

#include "cli/run_cli.hpp"

#include <cstdio>
#include <filesystem>
#include <string>

using Result = flexnn::testing::CliResult;
using flexnn::testing::run_cli;

TEST_CASE("flexnn --version and --help", "[cli]") {
  const Result version = run_cli("--version");
  CHECK(version.status == 0);
  CHECK_THAT(version.output, Catch::StartsWith("flexnn "));
  const Result help = run_cli("--help");
  CHECK(help.status == 0);
  CHECK_THAT(help.output, Catch::Contains("demo"));
}

TEST_CASE("flexnn rejects bad flags and values with an error and a non-zero exit", "[cli]") {
  const Result unknown = run_cli("--no-such-flag");
  CHECK(unknown.status != 0);
  CHECK_THAT(unknown.output, Catch::Contains("--no-such-flag"));
  const Result bad_value = run_cli("demo --epochs zero");
  CHECK(bad_value.status != 0);
  CHECK_THAT(bad_value.output, Catch::Contains("--epochs"));
  const Result out_of_range = run_cli("demo --epochs 0");
  CHECK(out_of_range.status != 0);
}

TEST_CASE("flexnn demo trains, saves and reloads a model", "[cli]") {
  const auto out = std::filesystem::temp_directory_path() / "flexnn-cli-demo";
  std::filesystem::remove_all(out);
  const Result demo = run_cli("demo --epochs 4 --train-size 1024 --out " + out.string());
  INFO(demo.output);
  REQUIRE(demo.status == 0);
  CHECK_THAT(demo.output, Catch::Contains("epoch  4"));
  CHECK_THAT(demo.output, Catch::Contains("reloaded it"));
  CHECK(std::filesystem::file_size(out / "small_cnn.safetensors") > 1000);
  std::filesystem::remove_all(out);
}

TEST_CASE("flexnn reports a library error as 'error:' with a non-zero exit", "[cli]") {
  const auto blocker = std::filesystem::temp_directory_path() / "flexnn-cli-blocker";
  std::filesystem::remove_all(blocker);
  { FILE* f = std::fopen(blocker.c_str(), "w"); std::fclose(f); }
  const Result demo = run_cli("demo --epochs 1 --out " + (blocker / "sub").string());
  CHECK(demo.status != 0);
  CHECK_THAT(demo.output, Catch::Contains("error:"));
  std::filesystem::remove_all(blocker);
}
