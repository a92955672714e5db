// IDX reading through zlib's gz* stream: zlib recognises the gzip magic (1f 8b) and inflates,
// and reads any other file as it is. The data is read straight into its final vector, which is
// filled only as bytes actually arrive, so a corrupt header cannot make the reader touch gigabytes.
#include "datasets/idx.hpp"

#include "engine/error.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <string_view>

namespace flexnn::datasets {
namespace {

constexpr int64_t kMaxSide = 1 << 14;               // rows and cols
constexpr uint64_t kMaxDataBytes = uint64_t{1} << 34;  // 16 GiB
constexpr uint64_t kMaxReserveBytes = uint64_t{1} << 30;  // beyond this, grow as data arrives
constexpr size_t kChunkBytes = size_t{16} << 20;

// A file opened for reading, decompressed if it is gzip.
class IdxStream {
 public:
  explicit IdxStream(const std::filesystem::path& path) : path_(path.string()), file_(gzopen(path_.c_str(), "rb")) {
    FLEXNN_CHECK(file_ != nullptr, "cannot open IDX file {}: {}", path_, std::strerror(errno));
    gzbuffer(file_, 256 * 1024);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;
  ~IdxStream() { gzclose(file_); }

  const std::string& path() const { return path_; }
  // Appended to offsets and sizes in messages: for a gzip file they count decompressed bytes.
  const char* stream_note() const { return gzdirect(file_) ? "" : " in the decompressed stream"; }

  // Reads up to n bytes; fewer only at the end of the data.
  size_t read(void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      const auto want = static_cast<unsigned>(std::min<size_t>(n - done, INT_MAX));
      const int got = gzread(file_, static_cast<char*>(dst) + done, want);
      if (got < 0) {
        int code = Z_OK;
        std::string_view message = gzerror(file_, &code);  // "<path>: <what>"
        if (message.starts_with(path_ + ": ")) message.remove_prefix(path_.size() + 2);
        fail("{}: cannot read after byte {}{}: {}", path_, position_ + done, stream_note(),
             code == Z_ERRNO ? std::strerror(errno) : message);
      }
      done += static_cast<size_t>(got);
      if (static_cast<unsigned>(got) < want) break;
    }
    position_ += done;
    return done;
  }

  // Reads and counts whatever is left.
  uint64_t skip_rest() {
    std::array<char, 1 << 16> scratch;
    uint64_t rest = 0;
    for (size_t got; (got = read(scratch.data(), scratch.size())) > 0;) rest += got;
    return rest;
  }

 private:
  std::string path_;
  gzFile file_;
  uint64_t position_ = 0;
};

uint32_t big_endian(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// The header's int32 fields: fields[0] is the magic number, checked first so that a file of
// the wrong kind is named as such even when it is shorter than this header.
template <size_t N>
std::array<uint32_t, N> read_header(IdxStream& in, uint32_t magic, const char* kind) {
  std::array<uint8_t, 4 * N> bytes;
  const size_t got = in.read(bytes.data(), bytes.size());
  std::array<uint32_t, N> fields;
  for (size_t i = 0; i < N; ++i) fields[i] = big_endian(bytes.data() + 4 * i);
  FLEXNN_CHECK(got < 4 || fields[0] == magic,
               "{}: not an IDX {} file: magic number {} (0x{:08x}) at byte 0, expected {} (0x{:08x})", in.path(), kind,
               fields[0], fields[0], magic, magic);
  FLEXNN_CHECK(got == bytes.size(), "{}: truncated IDX {} header: expected {} bytes, found {}", in.path(), kind,
               bytes.size(), got);
  return fields;
}

int64_t checked_dim(const IdxStream& in, uint32_t value, int64_t max, const char* name, size_t field) {
  FLEXNN_CHECK(value >= 1 && value <= static_cast<uint64_t>(max), "{}: IDX {} {} at byte {} is outside [1, {}]",
               in.path(), name, value, 4 * field, max);
  return value;
}

// Exactly `bytes` bytes after a header of `header_bytes`, and nothing after them.
std::vector<uint8_t> read_data(IdxStream& in, uint64_t bytes, uint64_t header_bytes) {
  FLEXNN_CHECK(bytes <= kMaxDataBytes, "{}: the IDX header promises {} data bytes, more than the {} allowed",
               in.path(), bytes, kMaxDataBytes);
  std::vector<uint8_t> data;
  data.reserve(std::min(bytes, kMaxReserveBytes));
  while (data.size() < bytes) {
    const size_t old = data.size();
    const size_t want = std::min<uint64_t>(bytes - old, kChunkBytes);
    data.resize(old + want);
    const size_t got = in.read(data.data() + old, want);
    data.resize(old + got);
    if (got < want) break;
  }
  FLEXNN_CHECK(data.size() == bytes, "{}: truncated IDX data: expected {} bytes after the {}-byte header{}, found {}",
               in.path(), bytes, header_bytes, in.stream_note(), data.size());
  const uint64_t extra = in.skip_rest();
  FLEXNN_CHECK(extra == 0, "{}: {} unexpected trailing bytes from byte {}{}: the header promises {} data bytes",
               in.path(), extra, header_bytes + bytes, in.stream_note(), bytes);
  return data;
}

}  // namespace

IdxImages read_idx_images(const std::filesystem::path& path) {
  IdxStream in(path);
  const auto header = read_header<4>(in, kIdxImagesMagic, "image");
  IdxImages images;
  images.count = checked_dim(in, header[1], INT32_MAX, "image count", 1);
  images.rows = checked_dim(in, header[2], kMaxSide, "row count", 2);
  images.cols = checked_dim(in, header[3], kMaxSide, "column count", 3);
  images.pixels = read_data(in, static_cast<uint64_t>(images.count * images.rows * images.cols), 16);
  return images;
}

std::vector<uint8_t> read_idx_labels(const std::filesystem::path& path) {
  IdxStream in(path);
  const auto header = read_header<2>(in, kIdxLabelsMagic, "label");
  const int64_t count = checked_dim(in, header[1], INT32_MAX, "label count", 1);
  return read_data(in, static_cast<uint64_t>(count), 8);
}

}  // namespace flexnn::datasets
