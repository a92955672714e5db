// Listing an image folder and loading one example: decode (or take the cached decode), convert
// to float planes, then resize the shorter side and crop in one resampling pass.
#include "datasets/image_folder.hpp"

#include "engine/error.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <system_error>

namespace flexnn::datasets {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool is_image_name(const fs::path& path) {
  const std::string extension = lower(path.extension().string());
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

// The entries of `dir` that `keep` accepts, sorted by name.
template <typename Keep>
std::vector<fs::path> list_sorted(const fs::path& dir, Keep keep) {
  std::vector<fs::path> found;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (keep(*it)) found.push_back(it->path());
  }
  FLEXNN_CHECK(!error, "image folder: cannot list {}: {}", dir.string(), error.message());
  std::sort(found.begin(), found.end());
  return found;
}

void check_options(const ImageFolderOptions& o) {
  FLEXNN_CHECK(o.channels == 1 || o.channels == 3, "image folder: channels must be 1 or 3, got {}", o.channels);
  FLEXNN_CHECK(o.resize >= 0 && o.crop >= 0, "image folder: resize and crop must be >= 0, got {} and {}", o.resize,
               o.crop);
  FLEXNN_CHECK(!o.random_crop || o.crop > 0, "image folder: random_crop needs a crop size");
  FLEXNN_CHECK(o.cache_bytes >= 0, "image folder: cache_bytes must be >= 0, got {}", o.cache_bytes);
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < o.classes.size(); ++i) {
    const auto [it, added] = seen.emplace(lower(o.classes[i]), i);
    FLEXNN_CHECK(added, "image folder: classes {} and {} are both named \"{}\" (case is ignored)", it->second, i,
                 o.classes[i]);
  }
}

}  // namespace

ImageFolder::ImageFolder(const fs::path& root, ImageFolderOptions options) : root_(root), options_(std::move(options)) {
  check_options(options_);
  FLEXNN_CHECK(fs::is_directory(root_), "image folder {} does not exist (expected <root>/<class>/*.png|jpg|jpeg)",
               root_.string());
  const std::vector<fs::path> folders = list_sorted(root_, [](const fs::directory_entry& entry) {
    return entry.is_directory() && !entry.path().filename().string().starts_with(".");
  });

  // Each folder's label.
  std::vector<std::pair<fs::path, int64_t>> labelled;
  if (options_.classes.empty()) {
    FLEXNN_CHECK(!folders.empty(), "image folder {} holds no class folders (expected <root>/<class>/*.png|jpg|jpeg)",
                 root_.string());
    for (const fs::path& folder : folders) {
      labelled.emplace_back(folder, static_cast<int64_t>(class_names_.size()));
      class_names_.push_back(folder.filename().string());
    }
  } else {
    class_names_ = options_.classes;
    std::map<std::string, int64_t> label_of;
    for (size_t i = 0; i < class_names_.size(); ++i) label_of.emplace(lower(class_names_[i]), static_cast<int64_t>(i));
    std::vector<char> has_folder(class_names_.size(), 0);
    for (const fs::path& folder : folders) {
      const auto it = label_of.find(lower(folder.filename().string()));
      if (it == label_of.end()) {
        FLEXNN_CHECK(options_.ignore_unknown, "image folder: {} is not one of the classes [{}] (set ignore_unknown to "
                     "skip such folders)", folder.string(), fmt::join(class_names_, ", "));
        continue;
      }
      FLEXNN_CHECK(!has_folder[it->second], "image folder: {} and another folder both name class \"{}\" (case is "
                   "ignored)", folder.string(), class_names_[it->second]);
      has_folder[it->second] = 1;
      labelled.emplace_back(folder, it->second);
    }
    for (size_t c = 0; c < class_names_.size(); ++c) {
      FLEXNN_CHECK(!options_.require_every_class || has_folder[c], "image folder: class \"{}\" has no folder {}",
                   class_names_[c], (root_ / class_names_[c]).string());
    }
    std::stable_sort(labelled.begin(), labelled.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  }

  for (const auto& [folder, label] : labelled) {
    const std::vector<fs::path> images = list_sorted(folder, [](const fs::directory_entry& entry) {
      return entry.is_regular_file() && is_image_name(entry.path());
    });
    FLEXNN_CHECK(!images.empty(), "image folder: class folder {} holds no images (*.png, *.jpg, *.jpeg)",
                 folder.string());
    files_.insert(files_.end(), images.begin(), images.end());
    labels_.insert(labels_.end(), images.size(), label);
  }
  FLEXNN_CHECK(!files_.empty(), "image folder {}: none of its folders is one of the classes [{}]", root_.string(),
               fmt::join(class_names_, ", "));
  if (options_.cache_bytes > 0) cache_.resize(files_.size());
  if (options_.skip_bad) bad_.assign(files_.size(), 0);
}

void ImageFolder::check_index(int64_t index, const char* what) const {
  FLEXNN_CHECK(index >= 0 && index < size(), "ImageFolder::{}: index {} is outside [0, {}) ({})", what, index, size(),
               root_.string());
}

int64_t ImageFolder::label(int64_t index) const {
  check_index(index, "label");
  return labels_[index];
}

const fs::path& ImageFolder::path(int64_t index) const {
  check_index(index, "path");
  return files_[index];
}

std::vector<fs::path> ImageFolder::bad_files() const {
  std::lock_guard lock(mutex_);
  std::vector<fs::path> bad;
  for (size_t i = 0; i < bad_.size(); ++i) {
    if (bad_[i]) bad.push_back(files_[i]);
  }
  return bad;
}

int64_t ImageFolder::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return cached_bytes_;
}

// The decoded file, from the cache or decoded now (and cached while the budget allows); null when
// the file is bad and skipped.
std::shared_ptr<const DecodedImage> ImageFolder::decode(int64_t index) const {
  {
    std::lock_guard lock(mutex_);
    if (!cache_.empty() && cache_[index]) return cache_[index];
    if (options_.skip_bad && bad_[index]) return nullptr;
  }
  std::shared_ptr<const DecodedImage> decoded;
  try {
    decoded = std::make_shared<const DecodedImage>(read_image(files_[index], options_.channels));
  } catch (const Error&) {
    if (!options_.skip_bad) throw;
    std::lock_guard lock(mutex_);
    bad_[index] = 1;
    return nullptr;
  }
  if (!cache_.empty()) {
    const auto bytes = static_cast<int64_t>(decoded->pixels.size());
    std::lock_guard lock(mutex_);
    if (!cache_[index] && cached_bytes_ + bytes <= options_.cache_bytes) {
      cache_[index] = decoded;
      cached_bytes_ += bytes;
    }
  }
  return decoded;
}

bool ImageFolder::load(int64_t index, ExampleRandom& random, Image& out) const {
  check_index(index, "load");
  const std::shared_ptr<const DecodedImage> decoded = decode(index);
  if (!decoded) return false;
  int64_t height = decoded->height, width = decoded->width;
  if (options_.resize > 0) std::tie(height, width) = shorter_side_size(height, width, options_.resize);
  const int64_t side = options_.crop;
  int64_t top = 0, left = 0, window_height = height, window_width = width;
  if (side > 0) {
    FLEXNN_CHECK(side <= height && side <= width, "{}: the image is {}x{}{}, smaller than the {}x{} crop",
                 files_[index].string(), decoded->height, decoded->width,
                 options_.resize > 0 ? fmt::format(" ({}x{} resized)", height, width) : std::string(), side, side);
    window_height = window_width = side;
    if (options_.random_crop) {
      top = random.below(height - side + 1);
      left = random.below(width - side + 1);
    } else {
      top = center_offset(height, side);
      left = center_offset(width, side);
    }
  }
  to_image(*decoded, out);
  if (options_.resize > 0) {
    out = resize_crop(out, height, width, top, left, window_height, window_width, options_.filter);
  } else if (side > 0) {
    out = crop(out, top, left, window_height, window_width);
  }
  return true;
}

}  // namespace flexnn::datasets
