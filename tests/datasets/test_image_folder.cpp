// Tests for image decoding and the image-folder sources on PNG and JPEG files written here with
// stb_image_write: exact PNG round trips and channel conversion, JPEG within its loss, class
// folders to labels (sorted, or mapped onto a given list such as CIFAR-10's), resizing and
// cropping, skip_bad and the decoded cache, Imagenette's layout and defaults, the catalogue's
// "folder" and "imagenette", and a clear flexnn::Error for each kind of bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/catalog.hpp"
#include "datasets/cifar10.hpp"
#include "datasets/image_decode.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/imagenette.hpp"
#include "engine/error.hpp"
#include "image_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace flexnn;
using namespace flexnn::datasets;
using namespace flexnn::testing;
using Catch::Contains;

namespace {

// The float planes of 8-bit interleaved pixels: the expected image.
Image planes(const Pixels& p) {
  Image image(p.channels, p.height, p.width);
  for (int c = 0; c < p.channels; ++c) {
    for (int i = 0; i < p.height * p.width; ++i) image.plane(c)[i] = p.bytes[i * p.channels + c] / 255.0f;
  }
  return image;
}

Image load(const ImageSource& source, int64_t index, uint64_t seed = 0, int64_t epoch = 0) {
  Image image;
  ExampleRandom random(seed, epoch, index);
  REQUIRE(source.load(index, random, image));
  return image;
}

// root/<class>/<file> for each (class, file) with a distinct PNG of height x width.
void write_tree(const fs::path& root, const std::vector<std::pair<std::string, std::string>>& files, int height = 6,
                int width = 5) {
  unsigned salt = 0;
  for (const auto& [cls, file] : files) write_png(root / cls / file, pattern_pixels(height, width, 3, ++salt));
}

}  // namespace

TEST_CASE("decode_image reads PNG exactly and converts channels", "[datasets][image_decode]") {
  TempDir dir("decode");
  const Pixels rgb = pattern_pixels(7, 9, 3, 1);
  write_png(dir.path() / "rgb.png", rgb);
  const DecodedImage decoded = read_image(dir.path() / "rgb.png", 3);
  CHECK(decoded.height == 7);
  CHECK(decoded.width == 9);
  CHECK(decoded.channels == 3);
  CHECK(decoded.pixels == rgb.bytes);
  Image image;
  to_image(decoded, image);
  CHECK(image.pixels == planes(rgb).pixels);

  // Grey to RGB replicates; RGBA to RGB drops alpha; RGB to grey is luma.
  const Pixels grey = pattern_pixels(4, 3, 1, 2);
  write_png(dir.path() / "grey.png", grey);
  const DecodedImage replicated = read_image(dir.path() / "grey.png", 3);
  for (size_t i = 0; i < grey.bytes.size(); ++i) {
    for (int c = 0; c < 3; ++c) REQUIRE(replicated.pixels[i * 3 + c] == grey.bytes[i]);
  }
  CHECK(read_image(dir.path() / "grey.png", 1).pixels == grey.bytes);
  const Pixels rgba = pattern_pixels(3, 4, 4, 3);
  write_png(dir.path() / "rgba.png", rgba);
  const DecodedImage no_alpha = read_image(dir.path() / "rgba.png", 3);
  for (size_t i = 0; i < 12; ++i) {
    for (int c = 0; c < 3; ++c) REQUIRE(no_alpha.pixels[i * 3 + c] == rgba.bytes[i * 4 + c]);
  }
  Pixels flat{1, 1, 3, {200, 100, 50}};
  write_png(dir.path() / "flat.png", flat);
  const int luma = read_image(dir.path() / "flat.png", 1).pixels[0];
  CHECK(std::abs(luma - (0.299 * 200 + 0.587 * 100 + 0.114 * 50)) < 1.5);

  // JPEG: lossy, close on a smooth image.
  const Pixels smooth = smooth_pixels(16, 24);
  write_jpg(dir.path() / "smooth.jpg", smooth, 95);
  const DecodedImage jpeg = read_image(dir.path() / "smooth.jpg", 3);
  REQUIRE(jpeg.pixels.size() == smooth.bytes.size());
  double error = 0.0;
  for (size_t i = 0; i < smooth.bytes.size(); ++i) error += std::abs(jpeg.pixels[i] - smooth.bytes[i]);
  CHECK(error / static_cast<double>(smooth.bytes.size()) < 3.0);
}

TEST_CASE("decode_image errors name the file and say why", "[datasets][image_decode][errors]") {
  TempDir dir("decode_bad");
  write_png(dir.path() / "good.png", pattern_pixels(20, 20, 3));
  const std::string png = read_bytes(dir.path() / "good.png");
  write_bytes(dir.path() / "text.png", "this is not an image\n");
  write_bytes(dir.path() / "empty.jpg", "");
  write_bytes(dir.path() / "half.png", png.substr(0, png.size() / 2));
  std::string huge = png;  // IHDR width and height (bytes 16..23) set to 10000 x 10000
  for (const int at : {16, 20}) huge.replace(at, 4, std::string("\x00\x00\x27\x10", 4));
  write_bytes(dir.path() / "huge.png", huge);

  CHECK_THROWS_WITH(read_image(dir.path() / "text.png", 3),
                    Contains((dir.path() / "text.png").string() + ": not an image stb_image can read"));
  CHECK_THROWS_WITH(read_image(dir.path() / "empty.jpg", 3), Contains("empty.jpg: not an image"));
  CHECK_THROWS_WITH(read_image(dir.path() / "half.png", 3), Contains("half.png: cannot decode the 20x20 image"));
  CHECK_THROWS_WITH(read_image(dir.path() / "huge.png", 3), Contains("huge.png: the image header gives 10000x10000 pixels"));
  CHECK_THROWS_WITH(read_image(dir.path() / "missing.png", 3),
                    Contains("cannot open image file " + (dir.path() / "missing.png").string()));
  CHECK_THROWS_WITH(read_image(dir.path() / "good.png", 2), Contains("channels must be 1 or 3, got 2"));
}

TEST_CASE("ImageFolder labels sorted class folders and loads their images", "[datasets][image_folder]") {
  TempDir dir("folder");
  write_tree(dir.path(), {{"dog", "b.png"}, {"dog", "a.PNG"}, {"cat", "z.jpeg"}, {"bird", "x.png"}, {"cat", "c.png"}});
  write_png(dir.path() / "cat" / "z.jpeg", pattern_pixels(6, 5, 3, 9));  // a PNG named .jpeg: decoded by content
  write_bytes(dir.path() / "cat" / "notes.txt", "ignored");
  write_tree(dir.path(), {{".hidden", "h.png"}});
  write_bytes(dir.path() / "README", "ignored too");

  const ImageFolder folder(dir.path());
  CHECK(folder.class_names() == std::vector<std::string>{"bird", "cat", "dog"});
  REQUIRE(folder.size() == 5);
  const std::vector<std::string> names{"bird/x.png", "cat/c.png", "cat/z.jpeg", "dog/a.PNG", "dog/b.png"};
  for (int64_t i = 0; i < 5; ++i) {
    CHECK(folder.path(i) == dir.path() / names[i]);
    CHECK(folder.label(i) == std::vector<int64_t>{0, 1, 1, 2, 2}[i]);
  }
  CHECK(load(folder, 3).pixels == planes(pattern_pixels(6, 5, 3, 2)).pixels);  // dog/a.PNG was written second
  CHECK(load(folder, 2).pixels == planes(pattern_pixels(6, 5, 3, 9)).pixels);

  ImageFolder grey(dir.path(), {.channels = 1});
  CHECK(load(grey, 0).channels == 1);
  CHECK_THROWS_WITH(folder.label(5), Contains("ImageFolder::label: index 5 is outside [0, 5)"));
}

TEST_CASE("ImageFolder maps folder names onto a given class list", "[datasets][image_folder]") {
  TempDir dir("folder_map");
  write_tree(dir.path(), {{"Cat", "1.png"}, {"airplane", "1.png"}, {"dog", "1.png"}, {"dog", "2.png"}});
  const std::vector<std::string> cifar(kCifar10Classes.begin(), kCifar10Classes.end());
  const ImageFolder folder(dir.path(), {.classes = cifar});
  CHECK(folder.class_names() == cifar);
  REQUIRE(folder.size() == 4);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < 4; ++i) labels.push_back(folder.label(i));
  CHECK(labels == std::vector<int64_t>{0, 3, 5, 5});  // in label order
  CHECK(folder.path(1) == dir.path() / "Cat" / "1.png");

  write_tree(dir.path(), {{"unicorn", "1.png"}});
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.classes = cifar}),
                    Contains((dir.path() / "unicorn").string() + " is not one of the classes [airplane, automobile") &&
                        Contains("set ignore_unknown"));
  CHECK(ImageFolder(dir.path(), {.classes = cifar, .ignore_unknown = true}).size() == 4);
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.classes = cifar, .ignore_unknown = true, .require_every_class = true}),
                    Contains("class \"automobile\" has no folder"));
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.classes = {"x", "y"}, .ignore_unknown = true}),
                    Contains("none of its folders is one of the classes [x, y]"));
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.classes = {"cat", "CAT"}}), Contains("classes 0 and 1 are both named"));
  write_tree(dir.path(), {{"DOG", "1.png"}});
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.classes = cifar, .ignore_unknown = true}),
                    Contains("and another folder both name class \"dog\""));
}

TEST_CASE("ImageFolder errors: missing root, no classes, an empty class folder, bad options",
          "[datasets][image_folder][errors]") {
  TempDir dir("folder_bad");
  CHECK_THROWS_WITH(ImageFolder(dir.path() / "nowhere"),
                    Contains("image folder " + (dir.path() / "nowhere").string() + " does not exist"));
  CHECK_THROWS_WITH(ImageFolder(dir.path()), Contains("holds no class folders"));
  write_tree(dir.path(), {{"a", "1.png"}});
  fs::create_directories(dir.path() / "b");
  write_bytes(dir.path() / "b" / "readme.txt", "no images here");
  CHECK_THROWS_WITH(ImageFolder(dir.path()),
                    Contains("class folder " + (dir.path() / "b").string() + " holds no images (*.png, *.jpg, *.jpeg)"));
  fs::remove_all(dir.path() / "b");
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.channels = 4}), Contains("channels must be 1 or 3, got 4"));
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.random_crop = true}), Contains("random_crop needs a crop size"));
  CHECK_THROWS_WITH(ImageFolder(dir.path(), {.crop = -1}), Contains("resize and crop must be >= 0"));
  // A crop larger than the image is an error naming the file when it is loaded.
  const ImageFolder too_small(dir.path(), {.crop = 7});
  Image image;
  ExampleRandom random(0, 0, 0);
  CHECK_THROWS_WITH(too_small.load(0, random, image),
                    Contains((dir.path() / "a" / "1.png").string() + ": the image is 6x5, smaller than the 7x7 crop"));
}

TEST_CASE("ImageFolder resizes the shorter side, then crops centred or at random", "[datasets][image_folder]") {
  TempDir dir("folder_crop");
  const Pixels pixels = pattern_pixels(12, 20, 3, 4);
  write_png(dir.path() / "c" / "wide.png", pixels);
  const Image full = planes(pixels);

  // Resize 12x20 -> 6x10, then a centred 6x6 window: columns 2..7.
  const ImageFolder centred(dir.path(), {.resize = 6, .crop = 6, .filter = ResizeFilter::Lanczos3});
  const Image expected = crop(resize(full, 6, 10, ResizeFilter::Lanczos3), 0, 2, 6, 6);
  const Image got = load(centred, 0);
  REQUIRE(got.same_shape(expected));
  for (size_t i = 0; i < got.pixels.size(); ++i) REQUIRE(got.pixels[i] == Approx(expected.pixels[i]).margin(1e-6));

  // Crop without resizing: exactly the window of the decoded pixels.
  CHECK(load(ImageFolder(dir.path(), {.crop = 8}), 0).pixels == crop(full, 2, 6, 8, 8).pixels);
  // Resize only.
  CHECK(load(ImageFolder(dir.path(), {.resize = 3}), 0).width == 5);

  // Random: the documented draws (top, then left) from the example's randomness.
  const ImageFolder random_crops(dir.path(), {.resize = 6, .crop = 6, .random_crop = true});
  const Image resized = resize(full, 6, 10, ResizeFilter::Bilinear);
  std::vector<int> seen(5, 0);
  for (int64_t epoch = 0; epoch < 40; ++epoch) {
    ExampleRandom draws(11, epoch, 0);
    const int64_t top = draws.below(1), left = draws.below(5);
    const Image window = load(random_crops, 0, 11, epoch);
    const Image want = crop(resized, top, left, 6, 6);
    for (size_t i = 0; i < want.pixels.size(); ++i) REQUIRE(window.pixels[i] == Approx(want.pixels[i]).margin(1e-6));
    CHECK(load(random_crops, 0, 11, epoch).pixels == window.pixels);
    ++seen[left];
  }
  CHECK(std::count(seen.begin(), seen.end(), 0) == 0);
}

TEST_CASE("ImageFolder skip_bad counts and skips unreadable files; the cache is bounded",
          "[datasets][image_folder]") {
  TempDir dir("folder_skip");
  write_tree(dir.path(), {{"a", "1.png"}, {"a", "2.png"}, {"b", "3.png"}});
  const fs::path bad = dir.path() / "b" / "bad.jpg";
  write_bytes(bad, "\xff\xd8\xff garbage that is no JPEG");

  const ImageFolder strict(dir.path());
  REQUIRE(strict.size() == 4);
  REQUIRE(strict.path(3) == bad);  // b/3.png sorts first
  Image image;
  ExampleRandom random(0, 0, 3);
  CHECK_THROWS_WITH(strict.load(3, random, image), Contains(bad.string()));
  CHECK_THROWS_AS(to_dataset(strict), flexnn::Error);

  const ImageFolder lenient(dir.path(), {.skip_bad = true});
  CHECK_FALSE(lenient.load(3, random, image));
  CHECK_FALSE(lenient.load(3, random, image));
  CHECK(lenient.bad_files() == std::vector<fs::path>{bad});
  const ImageDataset dataset = to_dataset(lenient);
  CHECK(dataset.size() == 3);
  CHECK(dataset.labels == std::vector<int64_t>{0, 0, 1});
  CHECK(dataset.pixels.size() == 3 * 90u);
  CHECK(dataset.pixels[2 * 90] == pattern_pixels(6, 5, 3, 3).bytes[0]);  // b/3.png's first red byte

  // No cache by default; a budget caps it.
  for (int64_t i = 0; i < 4; ++i) {
    ExampleRandom r(0, 0, i);
    lenient.load(i, r, image);
  }
  CHECK(lenient.cached_bytes() == 0);
  const ImageFolder cached(dir.path(), {.skip_bad = true, .cache_bytes = 200});
  for (int round = 0; round < 2; ++round) {
    for (int64_t i = 0; i < 4; ++i) {
      ExampleRandom r(0, 0, i);
      if (cached.load(i, r, image)) CHECK(image.pixels == load(lenient, i).pixels);
    }
  }
  CHECK(cached.cached_bytes() == 180);  // two 6x5x3 images fit in 200 bytes, a third does not
}

TEST_CASE("Imagenette: the wnid folders in order, its splits and crop defaults", "[datasets][imagenette]") {
  TempDir dir("imagenette");
  for (const char* split : {"train", "val"}) {
    for (size_t c = 0; c < kImagenetteWnids.size(); ++c) {
      const int copies = split == std::string("train") ? 2 : 1;
      for (int k = 0; k < copies; ++k) {
        write_jpg(dir.path() / split / kImagenetteWnids[c] / ("img" + std::to_string(k) + ".JPEG"),
                  smooth_pixels(30, 40, static_cast<unsigned>(c * 2 + k)));
      }
    }
  }
  const auto train = open_imagenette(dir.path(), "train", {.resize = 20, .crop = 16, .random_crop = true});
  REQUIRE(train->size() == 20);
  for (int64_t i = 0; i < 20; ++i) CHECK(train->label(i) == i / 2);
  CHECK(train->class_names()[9] == "n03888257");
  const Image example = load(*train, 7);
  CHECK(example.channels == 3);
  CHECK(example.height == 16);
  CHECK(example.width == 16);

  // Defaults: the shorter side to 256, a centred 224 crop; the paper's 254 crop.
  const auto val = open_imagenette(dir.path(), "test");
  REQUIRE(val->size() == 10);
  CHECK(val->path(0).parent_path().parent_path() == dir.path() / "val");
  const Image default_crop = load(*val, 3);
  CHECK(default_crop.height == 224);
  CHECK(default_crop.width == 224);
  CHECK(load(*open_imagenette(dir.path(), "val", {.crop = 254}), 0).height == 254);
  const auto catalogued = open_dataset("imagenette", dir.path(), "val", {.resize = 20, .crop = 16});
  CHECK(load(*catalogued, 4).pixels == load(*open_imagenette(dir.path(), "val", {.resize = 20, .crop = 16}), 4).pixels);

  CHECK_THROWS_WITH(open_imagenette(dir.path(), "valid"), Contains("unknown split \"valid\""));
  CHECK_THROWS_WITH(open_imagenette(dir.path(), "val", {.classes = {"x"}}), Contains("options.classes must be empty"));
  fs::remove_all(dir.path() / "val");
  CHECK_THROWS_WITH(open_imagenette(dir.path(), "val"),
                    Contains((dir.path() / "val").string() + " does not exist") && Contains("train/<wnid>/*.JPEG"));
  fs::remove_all(dir.path() / "train" / "n03888257");
  CHECK_THROWS_WITH(open_imagenette(dir.path(), "train"), Contains("class \"n03888257\" has no folder"));
  CHECK_THROWS_WITH(load_dataset("imagenette", dir.path(), "train"), Contains("streams its images from disk"));
  CHECK_THROWS_WITH(open_dataset("imagenette", dir.path() / "missing", "train"),
                    Contains("train/<wnid>/*.JPEG and val/<wnid>/*.JPEG") && Contains("--data-dir"));
  CHECK(default_data_dir("imagenette") == fs::path(kImagenetteDir));
}

TEST_CASE("the catalogue's folder data set: in memory or streamed, with or without split folders",
          "[datasets][image_folder]") {
  TempDir dir("folder_catalog");
  write_tree(dir.path(), {{"Ship", "1.png"}, {"frog", "1.png"}, {"frog", "2.png"}}, 8, 8);
  const ImageFolderOptions options{.classes = {kCifar10Classes.begin(), kCifar10Classes.end()}};
  const ImageDataset data = load_dataset("folder", dir.path(), "test", options);
  REQUIRE(data.size() == 3);
  CHECK(data.labels == std::vector<int64_t>{6, 6, 8});
  CHECK(data.num_classes() == 10);
  CHECK(data.channels == 3);
  CHECK(data.height == 8);
  CHECK(data.pixels[0] == pattern_pixels(8, 8, 3, 2).bytes[0]);  // frog/1.png, written second
  const auto source = open_dataset("folder", dir.path(), "train", options);
  CHECK(source->size() == 3);
  // A <split> folder, when there is one, holds the split.
  TempDir splits("folder_splits");
  write_tree(splits.path() / "train", {{"cat", "1.png"}}, 8, 8);
  write_tree(splits.path() / "test", {{"dog", "1.png"}, {"dog", "2.png"}}, 8, 8);
  CHECK(load_dataset("folder", splits.path(), "train", options).labels == std::vector<int64_t>{3});
  CHECK(load_dataset("folder", splits.path(), "test", options).labels == std::vector<int64_t>{5, 5});
  // Images of different sizes cannot share one in-memory data set without a crop.
  write_tree(dir.path(), {{"frog", "3.png"}}, 9, 8);
  CHECK_THROWS_WITH(load_dataset("folder", dir.path(), "test", options),
                    Contains("example 2 is 3x9x8 but example 0 is 3x8x8"));
  CHECK(load_dataset("folder", dir.path(), "test", {.classes = options.classes, .crop = 8}).size() == 4);
  CHECK_THROWS_WITH(default_data_dir("folder"), Contains("has no default directory"));
  CHECK_THROWS_WITH(load_dataset("folder", dir.path() / "missing", "test"), Contains("<class>/*.png|jpg|jpeg"));
}
