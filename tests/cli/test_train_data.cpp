// `flexnn train` and `flexnn eval` on the paper's other data sets, run as real processes on data
// written here in the real formats: CIFAR-10 (binary batches) with the paper's random horizontal
// flip, recorded in the run so that --resume checks it and resumes bit for bit; VGG16 by its flex
// flag; a data set that does not fit the model, an error naming both; Imagenette streamed from
// JPEG files (train, then eval with any number of decoding threads), with an unreadable file an
// error naming it, or skipped (and not counted) with --skip-bad; an image folder resized to the
// model's input.
#include <catch2/catch.hpp>

#include "cli/cli_files.hpp"
#include "cli/run_cli.hpp"
#include "datasets/image_files.hpp"
#include "temp_dir.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using Catch::Contains;
using flexnn::testing::CliResult;
using flexnn::testing::read_json;
using flexnn::testing::read_jsonl;
using flexnn::testing::run_cli;
using flexnn::testing::run_ok;
using flexnn::testing::shared_cifar10_dir;
using flexnn::testing::same_tensors;
using flexnn::testing::TempDir;
using Json = nlohmann::json;

namespace {

// conv2d-surrogate on 3 training and 2 test images per class: a fraction of a second an epoch.
std::string surrogate(const std::string& out, int epochs, const std::string& extra = "") {
  return fmt::format("train --model conv2d-surrogate --data cifar10 --data-dir {} --per-class 3 --test-per-class 2 "
                     "--batch-size 10 --lr 0.01 --seed 5 --threads 2 --epochs {} --out {} {}",
                     shared_cifar10_dir(), epochs, out, extra);
}

// An Imagenette tree: `per_class` training and one validation JPEG per wnid, 40x48 pixels. (The
// tests keep every training batch above one image, which BatchNorm needs.)
std::string write_imagenette(const fs::path& dir, int per_class) {
  const char* wnids[] = {"n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
                         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"};
  for (unsigned c = 0; c < 10; ++c) {
    for (int k = 0; k < per_class; ++k)
      flexnn::testing::write_jpg(dir / "train" / wnids[c] / fmt::format("{}.JPEG", k),
                                 flexnn::testing::smooth_pixels(40, 48, c * 7 + k));
    flexnn::testing::write_jpg(dir / "val" / wnids[c] / "0.JPEG", flexnn::testing::smooth_pixels(40, 48, c * 7 + 5));
  }
  return dir.string();
}

}  // namespace

TEST_CASE("flexnn train on CIFAR-10 flips training images as the paper, and --resume checks and repeats the flips",
          "[cli][presets]") {
  TempDir tmp("train_cifar");
  const CliResult full = run_ok(surrogate(tmp.str("full"), 2));
  CHECK_THAT(full.output, Contains("on cifar10") && Contains("random horizontal flip p = 0.5"));
  const Json summary = read_json(tmp.path() / "full" / "summary.json");
  CHECK(summary.at("data") == "cifar10");
  CHECK(summary.at("training").at("hflip").get<double>() == 0.5);
  CHECK(summary.at("train_images") == 30);
  CHECK(summary.at("test_images") == 20);
  const auto log = read_jsonl(tmp.path() / "full" / "log.jsonl");
  REQUIRE(log.size() == 2);
  for (const Json& record : log) {
    CHECK(record.at("test_accuracy").get<double>() >= 0);
    CHECK(record.at("test_accuracy").get<double>() <= 100);
  }

  // One epoch, then a resumed second: the same flips, so the same weights bit for bit.
  run_ok(surrogate(tmp.str("half"), 1));
  const CliResult resumed = run_ok(surrogate(tmp.str("half"), 2, "--resume"));
  CHECK_THAT(resumed.output, Contains("resuming"));
  CHECK(same_tensors(tmp.path() / "full" / "model.safetensors", tmp.path() / "half" / "model.safetensors"));

  // The flip is part of the run: resuming without it is refused, naming it.
  const CliResult other = run_cli(surrogate(tmp.str("half"), 3, "--resume --hflip 0"));
  CHECK(other.status == 1);
  CHECK_THAT(other.output, Contains("error:") && Contains("hflip"));

  // And it changes the training: without it, other weights.
  run_ok(surrogate(tmp.str("plain"), 2, "--hflip 0"));
  CHECK_FALSE(read_json(tmp.path() / "plain" / "summary.json").at("training").contains("hflip"));
  CHECK_FALSE(same_tensors(tmp.path() / "full" / "model.safetensors", tmp.path() / "plain" / "model.safetensors"));
}

TEST_CASE("flexnn train builds VGG16 from --flex and --flex-mode and trains it on CIFAR-10", "[cli][presets]") {
  TempDir tmp("train_vgg");
  const std::string command = fmt::format(
      "train --model vgg16 --flex single --flex-mode random --data-dir {} --per-class 2 --test-per-class 1 "
      "--batch-size 10 --epochs 1 --threads 2 --out {}",
      shared_cifar10_dir(), tmp.str("vgg"));
  const CliResult r = run_ok(command);
  CHECK_THAT(r.output, Contains("vgg16 (flex single, flex_mode random) on cifar10"));
  const Json config = read_json(tmp.path() / "vgg" / "summary.json").at("config");
  CHECK(config.at("flex") == "single");
  CHECK(config.at("flex_mode") == "random");
  CHECK(config.at("dataset") == "cifar10");
  CHECK(config.at("image_size") == 32);
  CHECK(read_jsonl(tmp.path() / "vgg" / "log.jsonl").size() == 1);

  // A flexible mode of another model is the registry's error, listing vgg16's.
  const CliResult bad = run_cli(fmt::format("train --model vgg16 --flex standard --data-dir {} --out {}",
                                            shared_cifar10_dir(), tmp.str("bad")));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Contains("error:") && Contains("'standard'") && Contains("none, single, all"));
  CHECK_FALSE(fs::exists(tmp.path() / "bad" / "model.safetensors"));
}

TEST_CASE("flexnn train and eval refuse a data set that does not fit the model, naming both", "[cli][presets]") {
  TempDir tmp("mismatch");
  const CliResult grey_model = run_cli(fmt::format("train --model fmnist-small --data cifar10 --data-dir {} --out {}",
                                                   shared_cifar10_dir(), tmp.str("a")));
  CHECK(grey_model.status == 1);
  CHECK_THAT(grey_model.output,
             Contains("fmnist-small") && Contains("1x28x28") && Contains("cifar10") && Contains("3x32x32"));
  CHECK_FALSE(fs::exists(tmp.path() / "a" / "model.safetensors"));

  const std::string fmnist = flexnn::testing::write_fmnist(tmp.path() / "fmnist", 20, 10);
  const CliResult grey_data = run_cli(
      fmt::format("train --model conv2d-surrogate --data fmnist --data-dir {} --out {}", fmnist, tmp.str("b")));
  CHECK(grey_data.status == 1);
  CHECK_THAT(grey_data.output,
             Contains("conv2d-surrogate") && Contains("3x32x32") && Contains("fmnist") && Contains("1x28x28"));

  run_ok(surrogate(tmp.str("run"), 1));
  const CliResult eval = run_cli(fmt::format("eval --checkpoint {} --data fmnist --data-dir {}",
                                             (tmp.path() / "run" / "model.safetensors").string(), fmnist));
  CHECK(eval.status == 1);
  CHECK_THAT(eval.output, Contains("conv2d-surrogate") && Contains("3x32x32") && Contains("1x28x28"));

  const CliResult skip = run_cli(surrogate(tmp.str("c"), 1, "--skip-bad"));
  CHECK(skip.status == 1);
  CHECK_THAT(skip.output, Contains("--skip-bad") && Contains("cifar10"));
  CHECK(run_cli(surrogate(tmp.str("d"), 1, "--data mnist")).status == 2);
}

TEST_CASE("flexnn train and eval stream Imagenette from JPEG files, and --skip-bad skips an unreadable one",
          "[cli][presets]") {
  TempDir tmp("imagenette");
  const std::string data = write_imagenette(tmp.path() / "imagenette", 2);
  // VGG16 is built for Imagenette (at 32x32 here, for speed); the quicker surrogate takes 32x32 crops.
  const std::string vgg16 = "--model vgg16 --image-size 32", surrogate = "--model conv2d-surrogate";
  const auto train = [&](const std::string& out, const std::string& model, const std::string& extra = "") {
    return run_cli(fmt::format("train {} --data imagenette --data-dir {} --epochs 1 --batch-size 7 --workers 3 "
                               "--threads 2 --out {} {}",
                               model, data, tmp.str(out), extra));
  };
  const CliResult trained = train("run", vgg16);
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const Json summary = read_json(tmp.path() / "run" / "summary.json");
  CHECK(summary.at("config").at("dataset") == "imagenette");
  CHECK(summary.at("config").at("image_size") == 32);
  CHECK(summary.at("data") == "imagenette");
  CHECK(summary.at("train_images") == 20);
  CHECK(summary.at("test_images") == 10);
  CHECK(summary.at("training").at("hflip").get<double>() == 0.5);

  // eval streams the validation split; the decoding threads change nothing, and it scores what the
  // training run's own test pass scored.
  const auto eval = [&](int workers) {
    const fs::path json = tmp.path() / fmt::format("eval{}.json", workers);
    run_ok(fmt::format("eval --checkpoint {} --data-dir {} --workers {} --threads 2 --json {}",
                       (tmp.path() / "run" / "model.safetensors").string(), data, workers, json.string()));
    return read_json(json);
  };
  const Json one = eval(1), three = eval(3);
  CHECK(one.at("dataset") == "imagenette");
  CHECK(one.at("n") == 10);
  CHECK(one.at("clean_accuracy") == three.at("clean_accuracy"));
  CHECK(one.at("clean_accuracy").get<double>() == summary.at("test_accuracy").get<double>());

  // A balanced subset needs the data in memory.
  const CliResult subset = train("subset", surrogate, "--per-class 1");
  CHECK(subset.status == 1);
  CHECK_THAT(subset.output, Contains("per_class") && Contains("imagenette"));

  // An unreadable validation file: an error naming it, or skipped and not counted.
  const fs::path bad_val = tmp.path() / "imagenette" / "val" / "n03000684" / "zz_bad.JPEG";
  flexnn::testing::write_bytes(bad_val, "not a JPEG");
  const std::string eval_bad = fmt::format("eval --checkpoint {} --data-dir {} --threads 2 --json {}",
                                           (tmp.path() / "run" / "model.safetensors").string(), data,
                                           tmp.str("skip.json"));
  const CliResult eval_failed = run_cli(eval_bad);
  CHECK(eval_failed.status == 1);
  CHECK_THAT(eval_failed.output, Contains("error:") && Contains("zz_bad.JPEG"));
  run_ok(eval_bad + " --skip-bad");
  const Json skipping = read_json(tmp.path() / "skip.json");
  CHECK(skipping.at("n") == 10);
  CHECK(skipping.at("clean_accuracy") == one.at("clean_accuracy"));
  fs::remove(bad_val);

  flexnn::testing::write_bytes(tmp.path() / "imagenette" / "train" / "n02102040" / "zz_bad.JPEG", "not a JPEG");
  const CliResult failed = train("failed", surrogate);
  CHECK(failed.status == 1);
  CHECK_THAT(failed.output, Contains("error:") && Contains("zz_bad.JPEG"));
  const CliResult skipped = train("skipped", surrogate, "--skip-bad");
  INFO(skipped.output);
  REQUIRE(skipped.status == 0);
  CHECK_THAT(skipped.output, Contains("skipped 1 unreadable file") && Contains("zz_bad.JPEG"));
}

TEST_CASE("flexnn train --data folder resizes an image folder to the model's input and records the data set",
          "[cli][presets]") {
  TempDir tmp("folder");
  for (const char* split : {"train", "test"})
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 4; ++k)
        flexnn::testing::write_png(tmp.path() / "images" / split / fmt::format("class{}", c) / fmt::format("{}.png", k),
                                   flexnn::testing::pattern_pixels(40, 36, 3, c * 4 + k));
  const std::string command =
      fmt::format("train --model conv2d-surrogate --data folder --data-dir {} --epochs 1 --batch-size 6 --threads 2 "
                  "--out {}",
                  (tmp.path() / "images").string(), tmp.str("run"));
  const CliResult r = run_ok(command);
  CHECK_THAT(r.output, Contains("on folder (12 train / 12 test images)"));
  const Json summary = read_json(tmp.path() / "run" / "summary.json");
  CHECK(summary.at("data") == "folder");
  CHECK(summary.at("training").at("data") == "folder");  // not the model's own data set: part of the run
  CHECK_FALSE(summary.at("training").contains("hflip"));  // the paper flips only CIFAR-10 and Imagenette
  CHECK(summary.at("train_images") == 12);
}
