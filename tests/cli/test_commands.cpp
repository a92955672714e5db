// The flexnn subcommands end to end, run as real processes on a small synthetic data set in
// Fashion-MNIST's IDX format: train (run directory, log, accuracy), --resume (bit-identical to an
// uninterrupted run, also after SIGKILL), eval (table and JSON), reproduce table2 (report and reuse
// of finished runs), info, --help, and the exit statuses of usage (2) and runtime (1) errors.
#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include "cli/cli_files.hpp"
#include "cli/run_cli.hpp"
#include "engine/io/checkpoint.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using Catch::Contains;
using flexnn::testing::CliResult;
using flexnn::testing::read_json;
using flexnn::testing::read_jsonl;
using flexnn::testing::run_cli;
using Json = nlohmann::json;

namespace {

// The training options every run here shares: fast and able to learn the synthetic set in two epochs.
constexpr const char* kFast = "--threads 2 --lr 0.01 --batch-size 20";

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
using flexnn::testing::TempDir;

// A Fashion-MNIST-format data set in `dir`: `train` training and 100 test images.
std::string write_dataset(const fs::path& dir, uint32_t train) { return flexnn::testing::write_fmnist(dir, train, 100); }

// `flexnn <args>` (split at spaces) started in the background with its output sent to `log`.
pid_t spawn_cli(const std::string& args, const fs::path& log) {
  std::vector<std::string> argv_strings = {FLEXNN_CLI_PATH};
  std::istringstream words(args);
  for (std::string word; words >> word;) argv_strings.push_back(word);
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int failed = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(failed == 0);
  return pid;
}

std::string train_command(const std::string& out, const std::string& data, int epochs, const std::string& extra = "") {
  return fmt::format("train --epochs {} --seed 3 --out {} --data-dir {} {} {}", epochs, out, data, kFast, extra);
}

}  // namespace

TEST_CASE("flexnn train writes the model, a log line per epoch and a summary, and learns", "[cli][commands]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 300);
  const fs::path out = tmp.path() / "run";
  const CliResult r = run_cli(train_command(out.string(), data, 2));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Contains("test accuracy"));
  REQUIRE(fs::is_regular_file(out / "model.safetensors"));
  REQUIRE(fs::is_regular_file(out / "summary.json"));

  const std::vector<Json> log = read_jsonl(out / "log.jsonl");
  REQUIRE(log.size() == 2);
  for (size_t i = 0; i < log.size(); ++i) {
    INFO("log line " << i + 1 << ": " << log[i].dump());
    REQUIRE(log[i].is_object());
    CHECK(log[i].at("epoch") == i + 1);
    for (const char* key : {"train_loss", "train_accuracy", "test_accuracy", "images_per_s"})
      REQUIRE(log[i].at(key).is_number());
    CHECK(log[i]["train_accuracy"].get<double>() >= 0);
    CHECK(log[i]["train_accuracy"].get<double>() <= 100);
    CHECK(log[i]["images_per_s"].get<double>() > 0);
  }
  CHECK(log[1]["train_loss"].get<double>() < log[0]["train_loss"].get<double>());
  // Chance is 10%; the bars are separable and two epochs reach 90-100% for every seed tried.
  CHECK(log[1]["test_accuracy"].get<double>() >= 60);

  const Json summary = read_json(out / "summary.json");
  CHECK(summary.at("epochs") == 2);
  CHECK(summary.at("test_accuracy") == log[1]["test_accuracy"]);
  CHECK(summary.at("train_images") == 300);
  const flexnn::TensorFile model = flexnn::load_tensors(out / "model.safetensors");
  const Json config = Json::parse(model.metadata.at("flexnn.config"));
  CHECK(config.at("model") == "fmnist-small");
  CHECK(config.at("flex") == "standard");
}

TEST_CASE("flexnn train --resume reaches the same weights as an uninterrupted run", "[cli][commands]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 300);
  for (const std::string flex : {"standard", "random"}) {
    INFO("--flex " << flex);
    const std::string a = tmp.str("a-" + flex), b = tmp.str("b-" + flex);
    const CliResult straight = run_cli(train_command(a, data, 3, "--flex " + flex));
    INFO(straight.output);
    REQUIRE(straight.status == 0);
    const CliResult first = run_cli(train_command(b, data, 1, "--flex " + flex));
    INFO(first.output);
    REQUIRE(first.status == 0);
    const CliResult resumed = run_cli(train_command(b, data, 3, "--flex " + flex + " --resume"));
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    CHECK_THAT(resumed.output, Contains("resuming"));
    CHECK(flexnn::testing::same_tensors(fs::path(a) / "model.safetensors", fs::path(b) / "model.safetensors"));
    const std::vector<Json> log_a = read_jsonl(fs::path(a) / "log.jsonl"), log_b = read_jsonl(fs::path(b) / "log.jsonl");
    REQUIRE(log_a.size() == 3);
    REQUIRE(log_b.size() == 3);
    for (size_t i = 0; i < 3; ++i)
      for (const char* key : {"epoch", "train_loss", "train_accuracy", "test_accuracy"}) CHECK(log_a[i].at(key) == log_b[i].at(key));
  }
}

TEST_CASE("flexnn train --resume continues a SIGKILLed run to the uninterrupted run's weights", "[cli][commands]") {
  TempDir tmp;
  // Enough images that an epoch takes a good fraction of a second, so the kill lands mid-run.
  const std::string data = write_dataset(tmp.path() / "data", 2400);
  const std::string a = tmp.str("a"), b = tmp.str("b");
  const CliResult straight = run_cli(train_command(a, data, 3, "--flex random"));
  INFO(straight.output);
  REQUIRE(straight.status == 0);

  const pid_t pid = spawn_cli(train_command(b, data, 3, "--flex random"), tmp.path() / "killed.txt");
  const fs::path log = fs::path(b) / "log.jsonl";
  // Kill it as soon as its first epoch is logged (the log is written after the epoch's state).
  int status = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(log) && !exited && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
  }
  if (!exited) {
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(::waitpid(pid, &status, 0) == pid);
  }
  INFO(flexnn::testing::read_text(tmp.path() / "killed.txt"));
  REQUIRE(fs::exists(log));
  REQUIRE(WIFSIGNALED(status));  // killed, not finished
  const size_t epochs_done = read_jsonl(log).size();
  REQUIRE(epochs_done >= 1);
  REQUIRE(epochs_done < 3);
  REQUIRE(fs::is_regular_file(fs::path(b) / "train_state.safetensors"));

  const CliResult resumed = run_cli(train_command(b, data, 3, "--flex random --resume"));
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.output, Contains("resuming"));
  CHECK(read_jsonl(log).size() == 3);
  CHECK(flexnn::testing::same_tensors(fs::path(a) / "model.safetensors", fs::path(b) / "model.safetensors"));
}

TEST_CASE("flexnn train refuses to overwrite a run, and --resume refuses other options", "[cli][commands]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 300);
  const std::string out = tmp.str("run");
  REQUIRE(run_cli(train_command(out, data, 1)).status == 0);
  const std::string model = flexnn::testing::read_text(fs::path(out) / "model.safetensors");

  const CliResult again = run_cli(train_command(out, data, 1));
  INFO(again.output);
  CHECK(again.status == 1);
  CHECK_THAT(again.output, Contains("error:") && Contains("--resume"));
  CHECK(flexnn::testing::read_text(fs::path(out) / "model.safetensors") == model);

  const CliResult other_momentum = run_cli(train_command(out, data, 2, "--resume --momentum 0.5"));
  INFO(other_momentum.output);
  CHECK(other_momentum.status == 1);
  CHECK_THAT(other_momentum.output, Contains("error:") && Contains("momentum = "));
  const CliResult other_flex = run_cli(train_command(out, data, 2, "--resume --flex random"));
  INFO(other_flex.output);
  CHECK(other_flex.status == 1);
  CHECK_THAT(other_flex.output, Contains("error:") && Contains("\"random\""));
  CHECK(flexnn::testing::read_text(fs::path(out) / "model.safetensors") == model);

  const CliResult nothing = run_cli(train_command(tmp.str("empty"), data, 1, "--resume"));
  INFO(nothing.output);
  CHECK(nothing.status == 1);
  CHECK_THAT(nothing.output, Contains("error:") && Contains("train_state.safetensors"));
}

TEST_CASE("flexnn eval reports clean and FGSM accuracy of a checkpoint alone", "[cli][commands]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 300);
  const fs::path run = tmp.path() / "run";
  REQUIRE(run_cli(train_command(run.string(), data, 2)).status == 0);
  const double trained_accuracy = read_jsonl(run / "log.jsonl").back().at("test_accuracy").get<double>();
  // The checkpoint alone, away from the run's other files.
  const fs::path checkpoint = tmp.path() / "alone" / "weights.safetensors";
  fs::create_directories(checkpoint.parent_path());
  fs::copy_file(run / "model.safetensors", checkpoint);

  auto eval = [&](const std::string& eps, const std::string& space, const std::string& json) {
    const CliResult r = run_cli(fmt::format("eval --checkpoint {} --data-dir {} --threads 2 --attack fgsm --eps {} "
                                            "--eps-space {} --json {}",
                                            checkpoint.string(), data, eps, space, tmp.str(json)));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("clean") && Contains("fgsm") && Contains("(" + space + ")"));
    return read_json(tmp.path() / json);
  };
  const Json pixel = eval("0,0.1", "pixel", "pixel.json");
  CHECK(pixel.at("dataset") == "fmnist");
  CHECK(pixel.at("split") == "test");
  CHECK(pixel.at("n") == 100);
  const double clean = pixel.at("clean_accuracy").get<double>();
  CHECK(clean == trained_accuracy);  // the same model on the same test set as training's last log line
  const Json& attacks = pixel.at("attacks");
  REQUIRE(attacks.size() == 2);
  CHECK(attacks[0].at("name") == "fgsm");
  CHECK(attacks[0].at("eps") == 0.0);
  CHECK(attacks[0].at("accuracy").get<double>() == clean);
  CHECK(attacks[1].at("name") == "fgsm");
  CHECK(attacks[1].at("eps").get<double>() == Approx(0.1));
  CHECK(attacks[1].at("accuracy").get<double>() <= clean);

  // ε in normalised units is ε·std in pixels: the same floats give the same accuracies.
  const float pixel_std =
      Json::parse(flexnn::load_tensors(checkpoint).metadata.at("flexnn.config")).at("std").at(0).get<float>();
  const std::vector<float> normalized_eps = {0.5f, 1.0f};
  const Json normalized = eval("0.5,1", "normalized", "normalized.json");
  const Json scaled = eval(fmt::format("{:.9g},{:.9g}", normalized_eps[0] * pixel_std, normalized_eps[1] * pixel_std), "pixel",
                           "scaled.json");
  REQUIRE(normalized.at("attacks").size() == 2);
  REQUIRE(scaled.at("attacks").size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(normalized["attacks"][i].at("eps_space") == "normalized");
    CHECK(normalized["attacks"][i].at("accuracy") == scaled["attacks"][i].at("accuracy"));
  }
  CHECK(normalized.at("clean_accuracy") == clean);
}

TEST_CASE("flexnn usage errors exit 2 and runtime errors exit 1, naming the problem", "[cli][commands]") {
  TempDir tmp;
  const std::string out = tmp.str("run");
  auto expect = [](const std::string& args, int status, const std::vector<std::string>& words) {
    const CliResult r = run_cli(args);
    INFO("flexnn " << args << "\n" << r.output);
    CHECK(r.status == status);
    for (const std::string& word : words) CHECK_THAT(r.output, Contains(word));
  };
  expect("train --no-such-flag --out " + out, 2, {"--no-such-flag"});
  expect("train --flex sometimes --out " + out, 2, {"--flex", "sometimes"});
  expect("train --epochs 0 --out " + out, 2, {"--epochs"});
  expect("train --epochs 1", 2, {"--out"});
  expect("eval", 2, {"--checkpoint"});
  expect("eval --checkpoint /nonexistent/model.safetensors", 2, {"--checkpoint", "/nonexistent/model.safetensors"});
  expect("reproduce", 2, {"subcommand"});
  expect("reproduce table2 --variants none,bogus", 2, {"--variants", "bogus"});
  CHECK_FALSE(fs::exists(out));

  const fs::path garbage = tmp.path() / "garbage.safetensors";
  std::string bytes;
  for (int i = 0; i < 4096; ++i) bytes.push_back(static_cast<char>(i * 131 + 7));
  flexnn::testing::write_binary(garbage, bytes);
  const std::string data = write_dataset(tmp.path() / "data", 300);
  expect(fmt::format("eval --checkpoint {} --data-dir {}", garbage.string(), data), 1, {"error:", garbage.string()});
  const std::string missing = tmp.str("no-such-data");
  expect(fmt::format("train --epochs 1 --out {} --data-dir {}", out, missing), 1, {"error:", missing});
  REQUIRE(run_cli(train_command(out, data, 1)).status == 0);
  expect(fmt::format("eval --checkpoint {}/model.safetensors --data-dir {} --attack fgsm", out, data), 1,
         {"error:", "--eps"});
}

TEST_CASE("flexnn --help works on every subcommand, and info reports the build", "[cli][commands]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"train", {"--epochs", "--flex", "--seed", "--lr", "--out", "--resume", "--data-dir", "--threads"}},
      {"eval", {"--checkpoint", "--attack", "--eps", "--eps-space", "--json", "--data-dir", "--threads"}},
      {"reproduce table2", {"--epochs", "--seeds", "--quick", "--variants", "--eps", "--out", "--data-dir"}},
      {"info", {"--threads"}},
      {"demo", {"--epochs", "--lr", "--out"}},
  };
  for (const auto& [command, flags] : commands) {
    const CliResult r = run_cli(command + " --help");
    INFO("flexnn " << command << " --help\n" << r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("Usage:") && Contains(command));
    for (const std::string& flag : flags) CHECK_THAT(r.output, Contains(flag));
  }
  const CliResult info = run_cli("info --threads 2");
  INFO(info.output);
  CHECK(info.status == 0);
  CHECK_THAT(info.output, Contains(std::string("flexnn ") + FLEXNN_VERSION) && Contains("threads") &&
                              Contains("fmnist-small"));
}

TEST_CASE("flexnn reproduce table2 reports against the paper and reuses finished runs", "[cli][commands]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 300);
  const fs::path out = tmp.path() / "table2";
  const std::string command =
      fmt::format("reproduce table2 --epochs 1 --seeds 2 --data-dir {} --out {} --variants none,standard --threads 2",
                  data, out.string());
  const CliResult first = run_cli(command);
  INFO(first.output);
  REQUIRE(first.status == 0);
  CHECK_THAT(first.output, Contains("paper") && Contains("baseline") && Contains("standard threshold"));
  CHECK_THAT(flexnn::testing::read_text(out / "table2.svg"), Catch::StartsWith("<svg"));
  const Json report = read_json(out / "table2.json");
  const Json& rows = report.at("rows");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].at("variant") == "none");
  CHECK(rows[1].at("variant") == "standard");
  CHECK(rows[0].at("paper").at("clean").get<double>() == Approx(87.7));
  for (const Json& row : rows) {
    INFO(row.dump());
    REQUIRE(row.at("clean").size() == 2);
    REQUIRE(row.at("fgsm").size() == 2);
    for (const char* key : {"clean", "fgsm"})
      for (const Json& value : row[key]) {
        CHECK(value.get<double>() >= 0);
        CHECK(value.get<double>() <= 100);
      }
    CHECK(row.at("clean_mean").get<double>() ==
          Approx((row["clean"][0].get<double>() + row["clean"][1].get<double>()) / 2));
  }

  std::vector<fs::file_time_type> trained;
  for (const char* run : {"none/seed1", "none/seed2", "standard/seed1", "standard/seed2"})
    trained.push_back(fs::last_write_time(out / run / "model.safetensors"));
  const CliResult second = run_cli(command);
  INFO(second.output);
  REQUIRE(second.status == 0);
  CHECK(read_json(out / "table2.json").at("rows") == rows);
  size_t i = 0;  // reused, not trained again
  for (const char* run : {"none/seed1", "none/seed2", "standard/seed1", "standard/seed2"})
    CHECK(fs::last_write_time(out / run / "model.safetensors") == trained[i++]);
}

// The random mode draws a fresh mask at every forward, so the evaluation must seed its masks the same
// way whether the run was trained just now or reused.
TEST_CASE("flexnn reproduce table2 gives the same random-mask rows when it reuses finished runs", "[cli][commands]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 300);
  const std::string command = fmt::format(
      "reproduce table2 --epochs 1 --seeds 2 --data-dir {} --out {} --variants random --threads 2", data, tmp.str("t2"));
  const CliResult first = run_cli(command);
  INFO(first.output);
  REQUIRE(first.status == 0);
  const Json rows = read_json(tmp.path() / "t2" / "table2.json").at("rows");
  const CliResult second = run_cli(command);
  INFO(second.output);
  REQUIRE(second.status == 0);
  CHECK(read_json(tmp.path() / "t2" / "table2.json").at("rows") == rows);
}

TEST_CASE("flexnn trains and evaluates on --device cuda, and a CUDA-trained checkpoint evaluates the same on the CPU",
          "[cli][commands][cuda]") {
  TempDir tmp;
  const std::string data = write_dataset(tmp.path() / "data", 100);
  const fs::path run = tmp.path() / "run";
  const CliResult trained = run_cli(train_command(run.string(), data, 1, "--device cuda"));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK_THAT(trained.output, Contains("on cuda"));
  CHECK(read_json(run / "summary.json").at("device") == "cuda");

  auto eval = [&](const std::string& device) {
    const fs::path json = tmp.path() / (device + ".json");
    const CliResult r = run_cli(fmt::format("eval --checkpoint {} --data-dir {} --device {} --attack fgsm --eps 0.1 "
                                            "--json {}",
                                            (run / "model.safetensors").string(), data, device, json.string()));
    INFO(r.output);
    REQUIRE(r.status == 0);
    return read_json(json);
  };
  const Json on_cuda = eval("cuda"), on_cpu = eval("cpu");
  CHECK(on_cuda.at("device") == "cuda");
  CHECK(on_cpu.at("device") == "cpu");
  // The devices round differently (on a GPU, not on the emulator), which may move an image that sits on
  // a decision boundary, or an FGSM step where a gradient element is about 0: at most one image of 100.
  CHECK(on_cuda.at("clean_accuracy").get<double>() == Approx(on_cpu.at("clean_accuracy").get<double>()).margin(1.0));
  CHECK(on_cuda.at("attacks")[0].at("accuracy").get<double>() ==
        Approx(on_cpu.at("attacks")[0].at("accuracy").get<double>()).margin(1.0));

  const CliResult bad = run_cli(fmt::format("eval --checkpoint {} --device tpu", (run / "model.safetensors").string()));
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("--device"));
}
