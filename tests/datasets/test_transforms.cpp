// Tests for the image transforms against hand-computed values (flip, crop with zero padding,
// centred windows, bilinear resampling of tiny images, normalisation), Lanczos-3 resampling
// against a direct evaluation of the kernel (up- and downsampling, and CIFAR's 32 -> 224), and
// the per-example randomness: its Philox stream layout, reproducibility by (seed, epoch, index)
// and the distribution of random crops and flips.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <set>
#include <utility>
#include <vector>

#include "datasets/example_random.hpp"
#include "datasets/transforms.hpp"
#include "engine/error.hpp"
#include "kernels/philox.hpp"

using namespace flexnn;
using namespace flexnn::datasets;
using Catch::Contains;

namespace {

Image make_image(int64_t c, int64_t h, int64_t w, std::vector<float> values) {
  Image image(c, h, w);
  REQUIRE(values.size() == image.pixels.size());
  image.pixels = std::move(values);
  return image;
}

// Values in [0, 1] that vary irregularly with position.
Image irregular_image(int64_t c, int64_t h, int64_t w, unsigned salt = 0) {
  Image image(c, h, w);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<float>((i * 7919 + salt * 104729) % 1000) / 999.0f;
  }
  return image;
}

// Lanczos-3 written out: 3 sin(pi x) sin(pi x / 3) / (pi x)^2 on (-3, 3), 1 at 0.
double lanczos3(double x) {
  if (x == 0.0) return 1.0;
  if (std::abs(x) >= 3.0) return 0.0;
  const double px = std::numbers::pi * x;
  return 3.0 * std::sin(px) * std::sin(px / 3.0) / (px * px);
}

// The weights of output pixel o along an axis of `in` -> `out` pixels, straight from the
// definition: the kernel at (k + 0.5 - centre) / stretch for every input pixel k, normalised.
std::vector<double> direct_weights(int64_t in, int64_t out, int64_t o) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double stretch = std::max(1.0, scale);
  const double centre = (static_cast<double>(o) + 0.5) * scale;
  std::vector<double> w(in);
  double total = 0.0;
  for (int64_t k = 0; k < in; ++k) total += w[k] = lanczos3((static_cast<double>(k) + 0.5 - centre) / stretch);
  for (double& v : w) v /= total;
  return w;
}

// resize(image, height, width, Lanczos3) evaluated directly, in double.
std::vector<double> direct_lanczos(const Image& image, int64_t height, int64_t width) {
  std::vector<double> out(image.channels * height * width, 0.0);
  for (int64_t y = 0; y < height; ++y) {
    const std::vector<double> wy = direct_weights(image.height, height, y);
    for (int64_t x = 0; x < width; ++x) {
      const std::vector<double> wx = direct_weights(image.width, width, x);
      for (int64_t c = 0; c < image.channels; ++c) {
        double sum = 0.0;
        for (int64_t i = 0; i < image.height; ++i) {
          for (int64_t j = 0; j < image.width; ++j) sum += wy[i] * wx[j] * image.plane(c)[i * image.width + j];
        }
        out[(c * height + y) * width + x] = sum;
      }
    }
  }
  return out;
}

void check_close(const Image& got, const std::vector<double>& expected, double tolerance) {
  REQUIRE(got.pixels.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) REQUIRE(got.pixels[i] == Approx(expected[i]).margin(tolerance));
}

}  // namespace

TEST_CASE("flip_horizontal mirrors every row of every channel", "[datasets][transforms]") {
  Image image = make_image(2, 2, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  flip_horizontal(image);
  CHECK(image.pixels == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
  flip_horizontal(image);
  CHECK(image.pixels == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
}

TEST_CASE("crop takes a window and pads with zeros outside the image", "[datasets][transforms]") {
  const Image image = make_image(2, 2, 2, {1, 2, 3, 4, 5, 6, 7, 8});
  Image padded = crop(image, -1, -1, 3, 4);
  CHECK(padded.channels == 2);
  CHECK(padded.height == 3);
  CHECK(padded.width == 4);
  CHECK(padded.pixels == std::vector<float>{0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0,  //
                                            0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0});
  CHECK(crop(image, 1, 1, 2, 2).pixels == std::vector<float>{4, 0, 0, 0, 8, 0, 0, 0});
  CHECK(crop(image, 0, 1, 1, 1).pixels == std::vector<float>{2, 6});
  CHECK(crop(image, 5, -7, 1, 2).pixels == std::vector<float>{0, 0, 0, 0});  // entirely outside
  CHECK_THROWS_WITH(crop(image, 0, 0, 0, 2), Contains("crop: the size must be positive, got 0x2"));

  // torchvision's centre: round((size - window) / 2), halves to even.
  CHECK(center_offset(5, 2) == 2);  // 1.5
  CHECK(center_offset(4, 1) == 2);  // 1.5
  CHECK(center_offset(3, 2) == 0);  // 0.5
  CHECK(center_offset(7, 2) == 2);  // 2.5
  CHECK(center_offset(256, 224) == 16);
  CHECK(center_offset(2, 3) == 0);  // -0.5
  CHECK(center_offset(2, 6) == -2);
  Image centred = make_image(1, 3, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  ExampleRandom unused(0, 0, 0);
  transforms::center_crop(1)(centred, unused);
  CHECK(centred.pixels == std::vector<float>{5});
  CHECK(unused.draws() == 0);
}

TEST_CASE("bilinear resampling of tiny images matches hand-computed values", "[datasets][transforms]") {
  // Upsampling 2 -> 4: centres at 0.25, 0.75, 1.25, 1.75 input pixels; the edges clamp.
  const Image row = make_image(1, 1, 2, {0.2f, 1.0f});
  const Image up = resize(row, 1, 4, ResizeFilter::Bilinear);
  REQUIRE(up.width == 4);
  CHECK(up.pixels[0] == Approx(0.2f).margin(1e-7));
  CHECK(up.pixels[1] == Approx(0.75f * 0.2f + 0.25f * 1.0f).margin(1e-7));
  CHECK(up.pixels[2] == Approx(0.25f * 0.2f + 0.75f * 1.0f).margin(1e-7));
  CHECK(up.pixels[3] == Approx(1.0f).margin(1e-7));

  // Downsampling 4 -> 2 widens the triangle to 2 pixels (antialiasing): weights 3/7, 3/7, 1/7 and
  // 1/7, 3/7, 3/7.
  const Image down = resize(make_image(1, 4, 1, {1, 2, 3, 4}), 2, 1, ResizeFilter::Bilinear);
  REQUIRE(down.height == 2);
  CHECK(down.pixels[0] == Approx(12.0 / 7.0).margin(1e-6));
  CHECK(down.pixels[1] == Approx(23.0 / 7.0).margin(1e-6));

  // 2x2 -> 4x4, separable: out[1][2] = 0.75 (0.25 a + 0.75 b) + 0.25 (0.25 c + 0.75 d).
  const Image square = make_image(1, 2, 2, {0, 1, 2, 3});
  const Image big = resize(square, 4, 4, ResizeFilter::Bilinear);
  CHECK(big.pixels[1 * 4 + 2] == Approx(1.25).margin(1e-6));
  CHECK(big.pixels[0] == Approx(0.0).margin(1e-7));
  CHECK(big.pixels[15] == Approx(3.0).margin(1e-7));
  CHECK(big.pixels[3 * 4 + 1] == Approx(0.75 * 2 + 0.25 * 3).margin(1e-6));  // the last row clamps to row 1

  // Same size: an exact copy.
  const Image same = irregular_image(3, 5, 4);
  CHECK(resize(same, 5, 4, ResizeFilter::Lanczos3).pixels == same.pixels);
  CHECK_THROWS_WITH(resize(same, 0, 4, ResizeFilter::Bilinear), Contains("resize: the size must be positive, got 0x4"));
}

TEST_CASE("Lanczos-3 resampling matches a direct evaluation of the kernel", "[datasets][transforms]") {
  SECTION("upsampling and downsampling, each axis separately and both") {
    const Image image = irregular_image(2, 5, 7, 1);
    check_close(resize(image, 5, 16, ResizeFilter::Lanczos3), direct_lanczos(image, 5, 16), 2e-6);
    check_close(resize(image, 13, 7, ResizeFilter::Lanczos3), direct_lanczos(image, 13, 7), 2e-6);
    check_close(resize(image, 13, 4, ResizeFilter::Lanczos3), direct_lanczos(image, 13, 4), 2e-6);
    const Image large = irregular_image(1, 23, 17, 2);
    check_close(resize(large, 6, 5, ResizeFilter::Lanczos3), direct_lanczos(large, 6, 5), 2e-6);
    // Lanczos rings: a step overshoots, unlike the bilinear filter.
    const Image step = make_image(1, 1, 6, {0, 0, 0, 1, 1, 1});
    const Image lanczos = resize(step, 1, 24, ResizeFilter::Lanczos3);
    const Image bilinear = resize(step, 1, 24, ResizeFilter::Bilinear);
    CHECK(*std::max_element(lanczos.pixels.begin(), lanczos.pixels.end()) > 1.01f);
    CHECK(*std::max_element(bilinear.pixels.begin(), bilinear.pixels.end()) <= 1.0f);
  }
  SECTION("CIFAR-10 upsampled to 224 x 224, as in the paper") {
    const Image image = irregular_image(3, 32, 32, 3);
    const Image big = resize(image, 224, 224, ResizeFilter::Lanczos3);
    REQUIRE(big.channels == 3);
    REQUIRE(big.height == 224);
    REQUIRE(big.width == 224);
    for (const auto& [y, x] : {std::pair<int64_t, int64_t>{0, 0}, {3, 200}, {111, 112}, {223, 223}, {57, 9}}) {
      const std::vector<double> wy = direct_weights(32, 224, y), wx = direct_weights(32, 224, x);
      for (int64_t c = 0; c < 3; ++c) {
        double expected = 0.0;
        for (int64_t i = 0; i < 32; ++i) {
          for (int64_t j = 0; j < 32; ++j) expected += wy[i] * wx[j] * image.plane(c)[i * 32 + j];
        }
        REQUIRE(big.plane(c)[y * 224 + x] == Approx(expected).margin(2e-6));
      }
    }
  }
}

TEST_CASE("resize_crop computes exactly the window of the full resize", "[datasets][transforms]") {
  const Image image = irregular_image(3, 30, 41, 4);
  for (const ResizeFilter filter : {ResizeFilter::Bilinear, ResizeFilter::Lanczos3}) {
    const Image full = resize(image, 19, 26, filter);
    const Image window = resize_crop(image, 19, 26, 3, 5, 16, 16, filter);
    REQUIRE(window.height == 16);
    REQUIRE(window.width == 16);
    CHECK(window.pixels == crop(full, 3, 5, 16, 16).pixels);
    // Unchanged height: only the columns are resampled.
    CHECK(resize_crop(image, 30, 50, 2, 1, 20, 30, filter).pixels == crop(resize(image, 30, 50, filter), 2, 1, 20, 30).pixels);
  }
  CHECK_THROWS_WITH(resize_crop(image, 19, 26, 4, 0, 16, 16, ResizeFilter::Bilinear),
                    Contains("the window 16x16 at (4, 0) is not inside the 19x26 output"));

  CHECK(shorter_side_size(375, 500, 256) == std::pair<int64_t, int64_t>{256, 341});
  CHECK(shorter_side_size(500, 375, 256) == std::pair<int64_t, int64_t>{341, 256});
  CHECK(shorter_side_size(32, 32, 224) == std::pair<int64_t, int64_t>{224, 224});
}

TEST_CASE("normalize subtracts the mean and divides by the standard deviation per channel", "[datasets][transforms]") {
  Image image = make_image(2, 1, 2, {0.5f, 1.0f, 0.0f, 0.25f});
  ExampleRandom random(0, 0, 0);
  transforms::normalize({0.5f, 0.25f}, {0.25f, 0.5f})(image, random);
  CHECK(image.pixels == std::vector<float>{0.0f, 2.0f, -0.5f, 0.0f});
  CHECK_THROWS_WITH(normalize(image, std::vector<float>{0.5f}, std::vector<float>{1.0f}),
                    Contains("1 means and 1 standard deviations for an image of 2 channels"));
  CHECK_THROWS_WITH(normalize(image, std::vector<float>{0, 0}, std::vector<float>{1, 0}),
                    Contains("standard deviation of channel 1 must be positive"));
  CHECK_THROWS_WITH(transforms::normalize({0.5f}, {}), Contains("1 means and 0 standard deviations"));
}

TEST_CASE("ExampleRandom draws from the example's own blocks of the seed's Philox stream", "[datasets][transforms]") {
  ExampleRandom random(42, 3, 5);
  const uint64_t offset = (uint64_t{3} << 32) + (uint64_t{1} << 31) + 16 * 5;
  for (uint64_t i = 0; i < 6; ++i) CHECK(random.uniform() == philox::uniform(42, offset, i));
  CHECK(random.draws() == 6);
  // Neighbouring examples and epochs do not share numbers.
  std::set<float> firsts;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    for (int64_t index = 0; index < 50; ++index) firsts.insert(ExampleRandom(42, epoch, index).uniform());
  }
  CHECK(firsts.size() == 150);
  ExampleRandom bounded(1, 0, 0);
  for (int k = 0; k < 1000; ++k) {
    const int64_t v = bounded.below(3);
    REQUIRE(v >= 0);
    REQUIRE(v < 3);
    if (k == 63) break;
  }
  CHECK_THROWS_WITH(bounded.uniform(), Contains("at most 64 random numbers"));
  CHECK_THROWS_WITH(ExampleRandom(0, -1, 0), Contains("epoch -1 is outside"));
  CHECK_THROWS_WITH(ExampleRandom(0, 0, int64_t{1} << 27), Contains("example index 134217728 is outside"));
}

TEST_CASE("random transforms are reproducible by (seed, epoch, index) and distributed as documented",
          "[datasets][transforms]") {
  const Image image = make_image(1, 2, 2, {1, 2, 3, 4});
  const Transform crop_transform = transforms::random_crop(2, 1);
  const Transform flip = transforms::random_horizontal_flip();
  std::set<std::pair<int64_t, int64_t>> positions;
  int flips = 0;
  const int n = 2000;
  for (int index = 0; index < n; ++index) {
    // The crop's position is the documented two draws: top, then left, each in [0, 3), minus the padding.
    ExampleRandom draws(7, 2, index);
    const int64_t top = draws.below(3) - 1, left = draws.below(3) - 1;
    Image cropped = image;
    ExampleRandom random(7, 2, index);
    crop_transform(cropped, random);
    REQUIRE(cropped.pixels == crop(image, top, left, 2, 2).pixels);
    positions.emplace(top, left);

    // The flip is the next draw, below 0.5.
    const bool flipped = draws.uniform() < 0.5f;
    flip(cropped, random);
    Image expected = crop(image, top, left, 2, 2);
    if (flipped) flip_horizontal(expected);
    REQUIRE(cropped.pixels == expected.pixels);
    flips += flipped;

    // The same (seed, epoch, index) again gives the same result.
    Image again = image;
    ExampleRandom repeat(7, 2, index);
    transforms::compose({crop_transform, flip})(again, repeat);
    REQUIRE(again.pixels == cropped.pixels);
  }
  CHECK(positions.size() == 9);
  CHECK(flips > n * 0.45);
  CHECK(flips < n * 0.55);

  // Another epoch or seed augments differently.
  int differ_epoch = 0, differ_seed = 0;
  for (int index = 0; index < 100; ++index) {
    const auto run = [&](uint64_t seed, int64_t epoch) {
      Image out = image;
      ExampleRandom random(seed, epoch, index);
      transforms::compose({crop_transform, flip})(out, random);
      return out.pixels;
    };
    differ_epoch += run(7, 2) != run(7, 3);
    differ_seed += run(7, 2) != run(8, 2);
  }
  CHECK(differ_epoch > 50);
  CHECK(differ_seed > 50);

  // Probabilities 0 and 1; bad arguments.
  Image kept = image;
  ExampleRandom random(0, 0, 0);
  transforms::random_horizontal_flip(0.0f)(kept, random);
  CHECK(kept.pixels == image.pixels);
  transforms::random_horizontal_flip(1.0f)(kept, random);
  CHECK(kept.pixels == std::vector<float>{2, 1, 4, 3});
  CHECK_THROWS_WITH(transforms::random_horizontal_flip(1.5f), Contains("p must be in [0, 1], got 1.5"));
  Image small = image;
  CHECK_THROWS_WITH(transforms::random_crop(5, 1)(small, random), Contains("is 4x4, smaller than the 5x5 crop"));
  CHECK_THROWS_WITH(transforms::compose({flip, Transform{}}), Contains("compose: transform 1 is empty"));
  Image resized = image;
  transforms::resize(4, 6, ResizeFilter::Bilinear)(resized, random);
  CHECK(resized.pixels == resize(image, 4, 6, ResizeFilter::Bilinear).pixels);
}
