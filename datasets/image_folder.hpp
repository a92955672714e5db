// ImageFolder: the images of <root>/<class>/*.{png,jpg,jpeg} (extensions in any case) as an
// ImageSource that reads and decodes each file when the loader asks for it, so memory does not
// grow with the data set. Labels come from the class folders' names: their sorted order, or a
// given class list (e.g. CIFAR-10's, to evaluate CIFAR-10 models on out-of-distribution folders).
// Each image can be resized (shorter side) and cropped to a square, centred for evaluation or at
// a random position for training.
#pragma once

#include "datasets/image_decode.hpp"
#include "datasets/image_source.hpp"
#include "datasets/transforms.hpp"

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace flexnn::datasets {

struct ImageFolderOptions {
  // Label i is the folder named classes[i] (compared ignoring ASCII case). Empty: the class
  // folders' names in sorted order.
  std::vector<std::string> classes = {};
  bool ignore_unknown = false;       // with `classes`: skip folders not in it (else an error)
  bool require_every_class = false;  // with `classes`: a class without a folder is an error
  int64_t channels = 3;              // 3: RGB, grey images replicated; 1: grey (stb_image's luma)
  int64_t resize = 0;                // resize the shorter side to this many pixels (0: keep the size)
  int64_t crop = 0;                  // then take a crop x crop window (0: the whole image)
  bool random_crop = false;          // the window at a random position (training), else centred
  ResizeFilter filter = ResizeFilter::Bilinear;
  // A file that cannot be read or decoded is an error naming it; with skip_bad it is counted
  // (bad_files()) and its example skipped, in this epoch and every later one.
  bool skip_bad = false;
  // Decoded images are kept in memory, up to this many bytes in all, and not decoded again
  // (0: no cache, so memory stays bounded whatever the data set's size).
  int64_t cache_bytes = 0;
};

class ImageFolder final : public ImageSource {
 public:
  // Lists the folders and files (sorted by name, so the indices do not depend on the file
  // system's order); decodes nothing. Throws if `root` or a class folder is missing, a class
  // folder holds no images, or a folder is not a known class.
  explicit ImageFolder(const std::filesystem::path& root, ImageFolderOptions options = {});

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t label(int64_t index) const override;
  const std::vector<std::string>& class_names() const override { return class_names_; }
  bool load(int64_t index, ExampleRandom& random, Image& out) const override;

  const std::filesystem::path& root() const { return root_; }
  const ImageFolderOptions& options() const { return options_; }
  const std::filesystem::path& path(int64_t index) const;
  // The files skipped as unreadable so far (with skip_bad), in index order.
  std::vector<std::filesystem::path> bad_files() const;
  int64_t cached_bytes() const;

 private:
  void check_index(int64_t index, const char* what) const;
  std::shared_ptr<const DecodedImage> decode(int64_t index) const;

  std::filesystem::path root_;
  ImageFolderOptions options_;
  std::vector<std::string> class_names_;
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;

  mutable std::mutex mutex_;  // guards what follows
  mutable std::vector<std::shared_ptr<const DecodedImage>> cache_;  // empty without a cache
  mutable int64_t cached_bytes_ = 0;
  mutable std::vector<char> bad_;  // per example, with skip_bad
};

}  // namespace flexnn::datasets
