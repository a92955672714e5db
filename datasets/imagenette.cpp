// Opening an Imagenette split: the split folder is checked first, so a wrong directory is named
// with the layout expected; the rest is an ImageFolder over the fixed wnid list.
#include "datasets/imagenette.hpp"

#include "engine/error.hpp"

#include <algorithm>

namespace flexnn::datasets {

std::unique_ptr<ImageFolder> open_imagenette(const std::filesystem::path& dir, std::string_view split,
                                             ImageFolderOptions options) {
  FLEXNN_CHECK(split == "train" || split == "val" || split == "test",
               "Imagenette: unknown split \"{}\", expected \"train\" or \"val\" (\"test\" reads \"val\")", split);
  FLEXNN_CHECK(options.classes.empty(), "Imagenette: the classes are its ten wnids; options.classes must be empty");
  const std::filesystem::path root = dir / (split == "train" ? "train" : "val");
  FLEXNN_CHECK(std::filesystem::is_directory(root),
               "Imagenette: {} does not exist (expected {}/train/<wnid>/*.JPEG and {}/val/<wnid>/*.JPEG, as in "
               "fast.ai's imagenette2)",
               root.string(), dir.string(), dir.string());
  options.classes.assign(kImagenetteWnids.begin(), kImagenetteWnids.end());
  options.ignore_unknown = false;
  options.require_every_class = true;
  if (options.crop == 0) options.crop = kImagenetteCrop;
  if (options.resize == 0) options.resize = std::max(kImagenetteResize, options.crop);
  return std::make_unique<ImageFolder>(root, std::move(options));
}

}  // namespace flexnn::datasets
