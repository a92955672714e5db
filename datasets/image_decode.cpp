// Image decoding through stb_image (Debian's libstb-dev ships it compiled as libstb, which flexnn
// links): the header is checked with stbi_info first so that the size limit applies before any
// allocation, then the image is decoded and copied out of stb's buffer.
#include "datasets/image_decode.hpp"

#include "engine/error.hpp"

#include <stb/stb_image.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <memory>

namespace flexnn::datasets {
namespace {

// stb_image's reason for its last failure on this thread.
const char* failure_reason() {
  const char* reason = stbi_failure_reason();
  return reason != nullptr ? reason : "no reason given";
}

}  // namespace

DecodedImage decode_image(std::span<const uint8_t> encoded, int64_t channels, std::string_view name) {
  FLEXNN_CHECK(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got {}", channels);
  FLEXNN_CHECK(encoded.size() <= INT_MAX, "{}: {} bytes is too large an image file for stb_image", name,
               encoded.size());
  const auto* data = reinterpret_cast<const stbi_uc*>(encoded.data());
  const int length = static_cast<int>(encoded.size());
  int width = 0, height = 0, file_channels = 0;
  FLEXNN_CHECK(stbi_info_from_memory(data, length, &width, &height, &file_channels) == 1,
               "{}: not an image stb_image can read (JPEG, PNG, BMP, GIF, TGA, PSD, HDR, PIC, PNM): {}", name,
               failure_reason());
  FLEXNN_CHECK(width >= 1 && height >= 1 && int64_t{width} * height <= kMaxImagePixels,
               "{}: the image header gives {}x{} pixels, outside the 1 to {} allowed", name, width, height,
               kMaxImagePixels);
  const std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, length, &width, &height, &file_channels, static_cast<int>(channels)),
      stbi_image_free);
  FLEXNN_CHECK(pixels != nullptr, "{}: cannot decode the {}x{} image: {}", name, width, height,
               failure_reason());
  DecodedImage image{height, width, channels, {}};
  image.pixels.assign(pixels.get(), pixels.get() + int64_t{height} * width * channels);
  return image;
}

DecodedImage read_image(const std::filesystem::path& path, int64_t channels) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  FLEXNN_CHECK(in.is_open(), "cannot open image file {}: {}", path.string(), std::strerror(errno));
  const std::streamoff size = in.tellg();
  FLEXNN_CHECK(size >= 0, "cannot read image file {}: cannot tell its size", path.string());
  std::vector<uint8_t> encoded(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(encoded.data()), size);
  FLEXNN_CHECK(in.gcount() == size, "cannot read image file {}: read {} of its {} bytes", path.string(), in.gcount(),
               size);
  return decode_image(encoded, channels, path.string());
}

void to_image(const DecodedImage& decoded, Image& out) {
  const int64_t channels = decoded.channels, area = decoded.height * decoded.width;
  out.reshape(channels, decoded.height, decoded.width);
  for (int64_t c = 0; c < channels; ++c) {
    float* dst = out.plane(c);
    const uint8_t* src = decoded.pixels.data() + c;
    for (int64_t p = 0; p < area; ++p) dst[p] = static_cast<float>(src[p * channels]) / 255.0f;
  }
}

}  // namespace flexnn::datasets
