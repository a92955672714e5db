// The safetensors reader and writer. The parser trusts nothing in the file: every length, offset
// and JSON type is checked before use, with the same acceptance rules as the reference library
// (tensors must tile the data section exactly), and every failure is a flexnn::Error that names
// the file, the tensor and the offsets involved. The writer goes through a temporary file and a
// rename, so a crash or a full disk never leaves a half-written checkpoint behind.
#include "engine/io/safetensors.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <system_error>
#include <tuple>
#include <utility>

#include "engine/error.hpp"
#include "engine/io/atomic_file.hpp"

namespace flexnn::safetensors {

namespace {

using Json = nlohmann::json;

// The reference library refuses headers above 100 MB; anything larger is a corrupt length.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::string_view kMetadataKey = "__metadata__";

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeInfo, 10> kDTypes{{
    {DType::F64, "F64", 8},
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
}};

const DTypeInfo& info_of(DType dtype) {
  const auto it = std::find_if(kDTypes.begin(), kDTypes.end(),
                               [dtype](const DTypeInfo& info) { return info.dtype == dtype; });
  FLEXNN_CHECK(it != kDTypes.end(), "safetensors: invalid DType value {}", static_cast<int>(dtype));
  return *it;
}

std::string known_dtype_names() {
  std::vector<std::string_view> names;
  for (const auto& info : kDTypes) names.push_back(info.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string errno_message(int error) { return std::generic_category().message(error); }

// numel(shape) * dtype_size(dtype) for non-negative dims, or nullopt if it overflows 64 bits.
std::optional<std::uint64_t> byte_size(const std::vector<int64_t>& shape, DType dtype) {
  std::uint64_t bytes = dtype_size(dtype);
  for (const int64_t dim : shape) {
    if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes)) {
      return std::nullopt;
    }
  }
  return bytes;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// A JSON value as it appears in the header, cut short so a hostile file cannot flood the message.
std::string describe(const Json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

// Owns a POSIX file descriptor.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// ---- parsing ----------------------------------------------------------------------------------

// Parses the header JSON, rejecting duplicate keys (nlohmann would silently keep one of them) and
// nesting deeper than any valid header has (which would otherwise cost memory and make later
// recursive steps such as dump() overflow the stack).
Json parse_header_json(const char* begin, const char* end, std::string_view source,
                       std::uint64_t header_end) {
  constexpr int kMaxDepth = 64;
  std::vector<std::set<std::string>> open_objects;
  const auto check_structure = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        FLEXNN_CHECK(depth < kMaxDepth, "safetensors '{}': header nests deeper than {} levels",
                     source, kMaxDepth);
        if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second) {
          fail("safetensors '{}': header has the key \"{}\" twice", source,
               parsed.get<std::string>());
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return Json::parse(begin, end, check_structure);
  } catch (const Json::parse_error& e) {
    fail("safetensors '{}': header (file bytes [8, {})) is not valid JSON: {}", source, header_end,
         e.what());
  }
}

std::map<std::string, std::string> parse_metadata(const Json& value, std::string_view source) {
  FLEXNN_CHECK(value.is_object(),
               "safetensors '{}': \"__metadata__\" must be an object of strings, found {} {}",
               source, value.type_name(), describe(value));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    FLEXNN_CHECK(
        item.is_string(),
        "safetensors '{}': \"__metadata__\" value for \"{}\" must be a string, found {} {}", source,
        key, item.type_name(), describe(item));
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// A JSON integer as a non-negative uint64, or nullopt for anything else (negative, float, ...).
std::optional<std::uint64_t> as_non_negative(const Json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<std::uint64_t>();
  return std::nullopt;
}

TensorEntry parse_entry(const std::string& name, const Json& value, std::string_view source,
                        std::size_t data_start, std::size_t data_len) {
  FLEXNN_CHECK(value.is_object(),
               "safetensors '{}': tensor '{}': entry must be an object, found {} {}", source, name,
               value.type_name(), describe(value));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    FLEXNN_CHECK(value.contains(key), "safetensors '{}': tensor '{}': entry is missing \"{}\"",
                 source, name, key);
  }

  const Json& dtype_json = value.at("dtype");
  FLEXNN_CHECK(dtype_json.is_string(),
               "safetensors '{}': tensor '{}': \"dtype\" must be a string, found {} {}", source,
               name, dtype_json.type_name(), describe(dtype_json));
  const auto dtype = parse_dtype(dtype_json.get_ref<const std::string&>());
  FLEXNN_CHECK(dtype.has_value(),
               "safetensors '{}': tensor '{}': unknown dtype \"{}\" (expected one of {})", source,
               name, dtype_json.get_ref<const std::string&>(), known_dtype_names());

  const Json& shape_json = value.at("shape");
  FLEXNN_CHECK(shape_json.is_array(),
               "safetensors '{}': tensor '{}': \"shape\" must be an array of integers, found {} {}",
               source, name, shape_json.type_name(), describe(shape_json));
  std::vector<int64_t> shape;
  for (std::size_t i = 0; i < shape_json.size(); ++i) {
    const Json& dim = shape_json[i];
    FLEXNN_CHECK(
        dim.is_number_integer(),
        "safetensors '{}': tensor '{}': shape dimension {} must be an integer, found {} {}", source,
        name, i, dim.type_name(), describe(dim));
    FLEXNN_CHECK(!dim.is_number_unsigned() ||
                     dim.get<std::uint64_t>() <= std::uint64_t{std::numeric_limits<int64_t>::max()},
                 "safetensors '{}': tensor '{}': shape dimension {} is too large ({})", source,
                 name, i, describe(dim));
    FLEXNN_CHECK(dim.get<int64_t>() >= 0,
                 "safetensors '{}': tensor '{}': shape dimension {} is negative ({})", source, name,
                 i, dim.get<int64_t>());
    shape.push_back(dim.get<int64_t>());
  }
  const auto expected_bytes = byte_size(shape, *dtype);
  FLEXNN_CHECK(expected_bytes.has_value(),
               "safetensors '{}': tensor '{}': shape {} of {} overflows the 64-bit byte count",
               source, name, shape_string(shape), dtype_name(*dtype));

  const Json& offsets = value.at("data_offsets");
  const bool is_pair = offsets.is_array() && offsets.size() == 2;
  const auto begin = is_pair ? as_non_negative(offsets[0]) : std::nullopt;
  const auto end = is_pair ? as_non_negative(offsets[1]) : std::nullopt;
  FLEXNN_CHECK(begin && end,
               "safetensors '{}': tensor '{}': \"data_offsets\" must be two non-negative integers "
               "[begin, end], found {}",
               source, name, describe(offsets));
  FLEXNN_CHECK(*begin <= *end,
               "safetensors '{}': tensor '{}': data_offsets begin {} is greater than end {}",
               source, name, *begin, *end);
  FLEXNN_CHECK(*end <= data_len,
               "safetensors '{}': tensor '{}': data_offsets end {} is past the end of the data "
               "section ({} bytes, file bytes [{}, {}))",
               source, name, *end, data_len, data_start, data_start + data_len);
  FLEXNN_CHECK(*end - *begin == *expected_bytes,
               "safetensors '{}': tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, "
               "{}] span {} bytes",
               source, name, shape_string(shape), dtype_name(*dtype), *expected_bytes, *begin, *end,
               *end - *begin);
  return {name, *dtype, std::move(shape), static_cast<std::size_t>(*begin),
          static_cast<std::size_t>(*end)};
}

// Sorts by offsets and checks that the tensors tile [0, data_len) exactly, without gaps or overlap.
void check_tiling(std::vector<TensorEntry>& tensors, std::string_view source,
                  std::size_t data_start, std::size_t data_len) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  std::size_t covered = 0;
  const TensorEntry* previous = nullptr;
  const auto after_previous = [&] {
    return previous ? fmt::format("the previous tensor '{}' ends at {}", previous->name, covered)
                    : std::string("the data section starts at 0");
  };
  for (const TensorEntry& entry : tensors) {
    FLEXNN_CHECK(entry.begin <= covered,
                 "safetensors '{}': tensor '{}': gap before data_offsets [{}, {}]: {}, so bytes "
                 "[{}, {}) of the data section (file bytes [{}, {})) belong to no tensor",
                 source, entry.name, entry.begin, entry.end, after_previous(), covered, entry.begin,
                 data_start + covered, data_start + entry.begin);
    // begin < covered: there is a previous tensor and this one starts inside it.
    FLEXNN_CHECK(entry.begin == covered,
                 "safetensors '{}': tensor '{}': data_offsets [{}, {}] overlap tensor '{}', which "
                 "ends at data offset {} (file byte {})",
                 source, entry.name, entry.begin, entry.end, previous->name, covered,
                 data_start + covered);
    covered = entry.end;
    previous = &entry;
  }
  FLEXNN_CHECK(
      covered == data_len,
      "safetensors '{}': data section not fully covered: tensors end at data offset {} but "
      "the data section is {} bytes, so file bytes [{}, {}) belong to no tensor",
      source, covered, data_len, data_start + covered, data_start + data_len);
}

// ---- writing ----------------------------------------------------------------------------------

// Validates the tensors and builds the header JSON, padded with spaces to a multiple of 8 bytes
// so that the data section starts 8-byte aligned, as the reference library writes it.
std::string encode_header(const std::string& target, const std::vector<TensorView>& tensors,
                          const std::map<std::string, std::string>& metadata) {
  // Ordered so the file reads like the reference library's: metadata first, then the tensors.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;

  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const TensorView& tensor : tensors) {
    FLEXNN_CHECK(tensor.name != kMetadataKey,
                 "safetensors write '{}': \"__metadata__\" is reserved and cannot name a tensor",
                 target);
    FLEXNN_CHECK(names.insert(tensor.name).second,
                 "safetensors write '{}': duplicate tensor name '{}'", target, tensor.name);
    for (std::size_t i = 0; i < tensor.shape.size(); ++i) {
      FLEXNN_CHECK(tensor.shape[i] >= 0,
                   "safetensors write '{}': tensor '{}': shape dimension {} is negative ({})",
                   target, tensor.name, i, tensor.shape[i]);
    }
    const auto expected = byte_size(tensor.shape, tensor.dtype);
    FLEXNN_CHECK(expected.has_value(),
                 "safetensors write '{}': tensor '{}': shape {} of {} overflows the 64-bit byte "
                 "count",
                 target, tensor.name, shape_string(tensor.shape), dtype_name(tensor.dtype));
    FLEXNN_CHECK(*expected == tensor.nbytes,
                 "safetensors write '{}': tensor '{}': shape {} of {} needs {} bytes but {} were "
                 "given",
                 target, tensor.name, shape_string(tensor.shape), dtype_name(tensor.dtype),
                 *expected, tensor.nbytes);
    FLEXNN_CHECK(tensor.data != nullptr || tensor.nbytes == 0,
                 "safetensors write '{}': tensor '{}': data is null but nbytes is {}", target,
                 tensor.name, tensor.nbytes);
    header[tensor.name] = {{"dtype", dtype_name(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.nbytes}}};
    offset += tensor.nbytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::type_error& e) {
    fail("safetensors write '{}': tensor names and metadata must be valid UTF-8: {}", target,
         e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

std::string_view dtype_name(DType dtype) { return info_of(dtype).name; }

std::size_t dtype_size(DType dtype) { return info_of(dtype).size; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

const std::byte* File::data(const TensorEntry& entry) const {
  return bytes.data() + data_start + entry.begin;
}

const TensorEntry* File::find(std::string_view name) const {
  const auto it = std::find_if(tensors.begin(), tensors.end(),
                               [name](const TensorEntry& entry) { return entry.name == name; });
  return it == tensors.end() ? nullptr : &*it;
}

File parse(std::vector<std::byte> bytes, std::string_view source_name) {
  const std::size_t file_size = bytes.size();
  FLEXNN_CHECK(file_size >= 8,
               "safetensors '{}': file is {} bytes, too short for the 8-byte header length",
               source_name, file_size);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), sizeof header_len);
  FLEXNN_CHECK(header_len <= kMaxHeaderBytes,
               "safetensors '{}': header length {} bytes is larger than the {}-byte limit (corrupt "
               "file or not a safetensors file)",
               source_name, header_len, kMaxHeaderBytes);
  FLEXNN_CHECK(header_len <= file_size - 8,
               "safetensors '{}': header length {} goes past the end of the file: the header would "
               "end at byte {} but the file is {} bytes",
               source_name, header_len, 8 + header_len, file_size);

  File file;
  file.data_start = 8 + static_cast<std::size_t>(header_len);
  const std::size_t data_len = file_size - file.data_start;
  const auto* text = reinterpret_cast<const char*>(bytes.data());
  const Json header =
      parse_header_json(text + 8, text + file.data_start, source_name, file.data_start);
  FLEXNN_CHECK(header.is_object(), "safetensors '{}': header must be a JSON object, found {} {}",
               source_name, header.type_name(), describe(header));

  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      file.metadata = parse_metadata(value, source_name);
    } else {
      file.tensors.push_back(parse_entry(key, value, source_name, file.data_start, data_len));
    }
  }
  check_tiling(file.tensors, source_name, file.data_start, data_len);
  file.bytes = std::move(bytes);
  return file;
}

File read(const std::filesystem::path& path) {
  const std::string name = path.string();
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("safetensors '{}': cannot open: {}", name, errno_message(errno));
  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) {
    fail("safetensors '{}': cannot stat: {}", name, errno_message(errno));
  }
  FLEXNN_CHECK(S_ISREG(status.st_mode), "safetensors '{}': not a regular file", name);

  std::vector<std::byte> bytes(static_cast<std::size_t>(status.st_size));
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t got = ::read(fd.get(), bytes.data() + filled, bytes.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("safetensors '{}': cannot read: {}", name, errno_message(errno));
    if (got == 0) break;  // the file shrank while we read it; parse() judges what is there
    filled += static_cast<std::size_t>(got);
  }
  bytes.resize(filled);
  return parse(std::move(bytes), name);
}

void write(const std::filesystem::path& path, const std::vector<TensorView>& tensors,
           const std::map<std::string, std::string>& metadata) {
  const std::string header = encode_header(path.string(), tensors, metadata);
  const std::uint64_t header_len = header.size();
  std::vector<std::span<const std::byte>> parts = {std::as_bytes(std::span(&header_len, 1)),
                                                   std::as_bytes(std::span(header.data(), header.size()))};
  for (const TensorView& tensor : tensors)
    parts.push_back({static_cast<const std::byte*>(tensor.data), tensor.nbytes});
  write_file_atomically(path, parts, "safetensors");
}

}  // namespace flexnn::safetensors
