// Tests for the safetensors reader/writer: bit-exact round trips, the header layout the reference
// library produces, a clear flexnn::Error for every kind of malformed file (and no crash on any
// truncation or corrupted byte), and the atomic write (no half files, no stray temporaries).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>

#include "temp_dir.hpp"
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/io/safetensors.hpp"

namespace fs = std::filesystem;
namespace st = flexnn::safetensors;
using Catch::Contains;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
using flexnn::testing::TempDir;

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::byte> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> chars{std::istreambuf_iterator<char>(in), {}};
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

template <typename T>
std::vector<std::byte> as_bytes(const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// A file whose 8-byte prefix says `header_len`, followed by `header` and `data_len` data bytes.
std::vector<std::byte> make_file(std::uint64_t header_len, const std::string& header,
                                 std::size_t data_len) {
  std::vector<std::byte> bytes(8 + header.size() + data_len, std::byte{0x5a});
  std::memcpy(bytes.data(), &header_len, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

std::vector<std::byte> make_file(const std::string& header, std::size_t data_len) {
  return make_file(header.size(), header, data_len);
}

// The message of the flexnn::Error that parsing `bytes` throws; fails the test if none is thrown.
std::string parse_error(std::vector<std::byte> bytes) {
  try {
    st::parse(std::move(bytes), "bad.safetensors");
  } catch (const flexnn::Error& e) {
    return e.what();
  }
  FAIL("parse accepted a malformed file");
  return {};
}

// One well-formed tensor entry for hand-written headers.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  std::size_t begin, std::size_t end) {
  return fmt::format(R"("{}":{{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", name, dtype,
                     shape, begin, end);
}

// A header object from `"key":value` members.
std::string object(const std::vector<std::string>& members) {
  std::string text = "{";
  for (const std::string& member : members) {
    if (text.size() > 1) text += ',';
    text += member;
  }
  text += '}';
  return text;
}

}  // namespace

TEST_CASE("dtype names, sizes and parsing agree", "[safetensors]") {
  const std::vector<std::pair<st::DType, std::size_t>> sizes = {
      {st::DType::F64, 8}, {st::DType::F32, 4}, {st::DType::F16, 2}, {st::DType::BF16, 2},
      {st::DType::I64, 8}, {st::DType::I32, 4}, {st::DType::I16, 2}, {st::DType::I8, 1},
      {st::DType::U8, 1},  {st::DType::BOOL, 1}};
  for (const auto& [dtype, size] : sizes) {
    CHECK(st::dtype_size(dtype) == size);
    CHECK(st::parse_dtype(st::dtype_name(dtype)) == dtype);
  }
  CHECK(st::dtype_name(st::DType::BF16) == "BF16");
  CHECK(st::dtype_name(st::DType::BOOL) == "BOOL");
  CHECK_FALSE(st::parse_dtype("f32").has_value());
  CHECK_FALSE(st::parse_dtype("F8_E4M3").has_value());
}

TEST_CASE("write then read round-trips tensors, shapes, bytes and metadata", "[safetensors]") {
  TempDir dir;
  const fs::path path = dir.path() / "model.safetensors";
  const auto weight = as_bytes(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f});
  const auto steps = as_bytes(std::vector<int64_t>{-1, 0, 1LL << 40});
  const auto scalar = as_bytes(std::vector<std::uint16_t>{0x3f80});  // bf16 1.0
  const auto mask = as_bytes(std::vector<std::uint8_t>{1, 0, 1});
  const auto mean = as_bytes(std::vector<double>{3.14159, -2.5});
  const std::vector<st::TensorView> tensors = {
      {"fc.weight", st::DType::F32, {2, 3}, weight.data(), weight.size()},
      {"steps", st::DType::I64, {3}, steps.data(), steps.size()},
      {"scale", st::DType::BF16, {}, scalar.data(), scalar.size()},
      {"empty", st::DType::U8, {0, 5}, nullptr, 0},
      {"mask", st::DType::BOOL, {3}, mask.data(), mask.size()},
      {"bn.mean", st::DType::F64, {1, 2}, mean.data(), mean.size()},
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"config", R"({"model": "vgg16", "flexible": "all"})"}, {"µ", "ünïcode"}};
  st::write(path, tensors, metadata);

  const st::File file = st::read(path);
  CHECK(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const st::TensorView& expected = tensors[i];
    const st::TensorEntry& got = file.tensors[i];  // written in the given order, packed
    INFO("tensor " << expected.name);
    CHECK(got.name == expected.name);
    CHECK(got.dtype == expected.dtype);
    CHECK(got.shape == expected.shape);
    CHECK(got.begin == offset);
    CHECK(got.end == offset + expected.nbytes);
    CHECK(file.find(expected.name) == &got);
    if (expected.nbytes > 0) {
      CHECK(std::memcmp(file.data(got), expected.data, expected.nbytes) == 0);
    }
    offset += expected.nbytes;
  }
  CHECK(file.bytes.size() == file.data_start + offset);
  CHECK(file.find("missing") == nullptr);
  CHECK(file.find("fc") == nullptr);

  // Reading and re-writing reproduces the file bit for bit.
  std::vector<st::TensorView> again;
  for (const auto& entry : file.tensors) {
    again.push_back(
        {entry.name, entry.dtype, entry.shape, file.data(entry), entry.end - entry.begin});
  }
  const fs::path copy = dir.path() / "copy.safetensors";
  st::write(copy, again, file.metadata);
  CHECK(read_bytes(copy) == read_bytes(path));
}

TEST_CASE("an empty checkpoint is valid and has no metadata key", "[safetensors]") {
  TempDir dir;
  const fs::path path = dir.path() / "empty.safetensors";
  st::write(path, {}, {});
  const auto bytes = read_bytes(path);
  REQUIRE(bytes.size() == 16);
  CHECK(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, 8) == "{}      ");
  const st::File file = st::read(path);
  CHECK(file.tensors.empty());
  CHECK(file.metadata.empty());
  CHECK(file.data_start == 16);
}

TEST_CASE("the header is padded with spaces so the data section is 8-byte aligned",
          "[safetensors]") {
  TempDir dir;
  const auto value = as_bytes(std::vector<float>{42.0f});
  for (std::size_t name_len = 1; name_len <= 17; ++name_len) {
    const fs::path path = dir.path() / "aligned.safetensors";
    st::write(path, {{std::string(name_len, 'w'), st::DType::F32, {1}, value.data(), 4}}, {});
    const auto bytes = read_bytes(path);
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    INFO("name length " << name_len << ", header length " << header_len);
    CHECK(header_len % 8 == 0);
    CHECK(bytes.size() == 8 + header_len + 4);
    const std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, header_len);
    const std::size_t close = header.rfind('}');
    CHECK(header_len - (close + 1) < 8);  // at most 7 padding bytes
    CHECK(header.find_first_not_of(' ', close + 1) == std::string::npos);
    CHECK(st::read(path).data_start % 8 == 0);
  }
}

TEST_CASE("the writer lays a file out byte for byte as the reference library does",
          "[safetensors]") {
  // safetensors.torch.save_file({"a": torch.tensor([1.0, 2.0])}, f, metadata={"format": "pt"}):
  // metadata first, fields in the order dtype/shape/data_offsets, compact JSON, space padding.
  TempDir dir;
  const fs::path path = dir.path() / "ref.safetensors";
  const auto values = as_bytes(std::vector<float>{1.0f, 2.0f});
  st::write(path, {{"a", st::DType::F32, {2}, values.data(), values.size()}}, {{"format", "pt"}});

  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"
      "   ";
  std::vector<std::byte> expected = make_file(88, header, 0);
  expected.insert(expected.end(), values.begin(), values.end());
  CHECK(read_bytes(path) == expected);
}

TEST_CASE("parse accepts headers in any key order and without padding", "[safetensors]") {
  const std::string header =
      object({entry("b", "I32", "[1]", 4, 8), R"("__metadata__":{"k":"v"})",
              entry("a", "I8", "[2,2]", 0, 4), entry("z", "F16", "[0]", 8, 8)});
  auto bytes = make_file(header, 8);
  for (int i = 0; i < 8; ++i) bytes[8 + header.size() + i] = std::byte(i);
  const st::File file = st::parse(std::move(bytes), "unpadded.safetensors");
  REQUIRE(file.tensors.size() == 3);
  CHECK(file.tensors[0].name == "a");
  CHECK(file.tensors[1].name == "b");
  CHECK(file.tensors[2].name == "z");
  CHECK(file.tensors[0].shape == std::vector<int64_t>{2, 2});
  CHECK(file.metadata == std::map<std::string, std::string>{{"k", "v"}});
  CHECK(file.data_start == 8 + header.size());
  CHECK(file.data(file.tensors[1])[0] == std::byte(4));
}

TEST_CASE("parse rejects malformed files with a clear message", "[safetensors]") {
  const auto check = [](std::vector<std::byte> bytes, const std::string& phrase) {
    const std::string message = parse_error(std::move(bytes));
    INFO("message: " << message);
    CHECK_THAT(message, Contains("bad.safetensors") && Contains(phrase));
  };
  const std::string good_a = entry("a", "F32", "[2]", 0, 8);

  SECTION("file shorter than the length prefix") {
    check(std::vector<std::byte>(5), "file is 5 bytes, too short for the 8-byte header length");
  }
  SECTION("header length past the end of the file") {
    check(make_file(100, "{}", 8),
          "header length 100 goes past the end of the file: the header would end at byte 108 but "
          "the file is 18 bytes");
  }
  SECTION("absurd header length") {
    check(make_file(std::uint64_t{1} << 40, "{}", 0), "larger than the 100000000-byte limit");
    check(make_file(~std::uint64_t{0}, "{}", 0), "header length 18446744073709551615 bytes");
  }
  SECTION("header is not JSON") {
    check(make_file(R"({"a": )", 0), "header (file bytes [8, 14)) is not valid JSON");
    check(make_file(R"({"a": )", 0), "parse error");
    check(make_file("{\"\xff\":1}", 0), "is not valid JSON");
  }
  SECTION("header is not an object") {
    check(make_file("[1,2]", 0), "header must be a JSON object, found array");
  }
  SECTION("absurdly nested header") {
    const std::size_t depth = 100000;
    check(make_file(std::string(depth, '[') + std::string(depth, ']'), 0),
          "header nests deeper than 64 levels");
    check(make_file(R"({"w":)" + std::string(depth, '['), 0), "header nests deeper than 64 levels");
  }
  SECTION("duplicate keys") {
    check(make_file(object({good_a, good_a}), 8), "header has the key \"a\" twice");
  }
  SECTION("entry is not an object") {
    check(make_file(R"({"w":3})", 0), "tensor 'w': entry must be an object, found number");
  }
  SECTION("missing fields") {
    check(make_file(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4),
          "tensor 'w': entry is missing \"dtype\"");
    check(make_file(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4),
          "tensor 'w': entry is missing \"shape\"");
    check(make_file(R"({"w":{"dtype":"F32","shape":[1]}})", 4),
          "tensor 'w': entry is missing \"data_offsets\"");
  }
  SECTION("fields of the wrong JSON type") {
    check(make_file(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
          "tensor 'w': \"dtype\" must be a string, found number");
    check(make_file(R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", 4),
          "tensor 'w': \"shape\" must be an array of integers, found string");
    check(make_file(R"({"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4),
          "tensor 'w': shape dimension 0 must be an integer, found number 1.0");
    check(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
          "tensor 'w': \"data_offsets\" must be two non-negative integers [begin, end], found [0]");
    check(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":["0",4]}})", 4),
          "\"data_offsets\" must be two non-negative integers");
    check(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"b":0}}})", 4),
          "\"data_offsets\" must be two non-negative integers");
  }
  SECTION("negative offsets") {
    check(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4),
          "tensor 'w': \"data_offsets\" must be two non-negative integers [begin, end], found "
          "[-4,0]");
  }
  SECTION("negative or oversized shape dimension") {
    check(make_file(R"({"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]}})", 4),
          "tensor 'w': shape dimension 1 is negative (-1)");
    check(make_file(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})",
                    4),
          "tensor 'w': shape dimension 0 is too large (18446744073709551615)");
  }
  SECTION("unknown dtype") {
    check(make_file(object({entry("w", "F8_E4M3", "[4]", 0, 4)}), 4),
          "tensor 'w': unknown dtype \"F8_E4M3\" (expected one of F64, F32,");
  }
  SECTION("shape product overflows") {
    check(make_file(object({entry("w", "F32", "[4294967296,4294967296]", 0, 4)}), 4),
          "tensor 'w': shape [4294967296, 4294967296] of F32 overflows the 64-bit byte count");
    check(make_file(object({entry("w", "I64", "[2305843009213693952]", 0, 4)}), 4),
          "overflows the 64-bit byte count");
  }
  SECTION("begin after end") {
    check(make_file(object({entry("w", "F32", "[1]", 8, 4)}), 8),
          "tensor 'w': data_offsets begin 8 is greater than end 4");
  }
  SECTION("end past the data section") {
    const std::string header = object({entry("w", "F32", "[4]", 0, 16)});
    check(make_file(header, 8),
          fmt::format("tensor 'w': data_offsets end 16 is past the end of the data section (8 "
                      "bytes, file bytes [{}, {}))",
                      8 + header.size(), 16 + header.size()));
    check(make_file(object({entry("w", "F32", "[4]", 0, 18446744073709551615ULL)}), 8),
          "data_offsets end 18446744073709551615 is past the end of the data section");
  }
  SECTION("byte count disagrees with shape and dtype") {
    check(make_file(object({entry("w", "F32", "[3]", 0, 8)}), 8),
          "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8 bytes");
    check(make_file(object({entry("s", "F64", "[]", 0, 4)}), 4),
          "tensor 's': shape [] of F64 needs 8 bytes but data_offsets [0, 4] span 4 bytes");
  }
  SECTION("overlapping tensors") {
    check(make_file(object({good_a, entry("b", "F32", "[2]", 4, 12)}), 12),
          "tensor 'b': data_offsets [4, 12] overlap tensor 'a', which ends at data offset 8");
  }
  SECTION("gap between tensors") {
    check(
        make_file(object({entry("a", "F32", "[1]", 0, 4), entry("b", "F32", "[1]", 8, 12)}), 12),
        "tensor 'b': gap before data_offsets [8, 12]: the previous tensor 'a' ends at 4, so bytes "
        "[4, 8) of the data section");
    check(make_file(object({entry("a", "F32", "[1]", 4, 8)}), 8),
          "tensor 'a': gap before data_offsets [4, 8]: the data section starts at 0");
  }
  SECTION("data section not fully covered") {
    check(make_file(object({entry("a", "F32", "[1]", 0, 4)}), 8),
          "data section not fully covered: tensors end at data offset 4 but the data section is 8 "
          "bytes");
    check(make_file("{}", 1), "tensors end at data offset 0 but the data section is 1 bytes");
  }
  SECTION("metadata is not a string-to-string object") {
    check(make_file(R"({"__metadata__":["pt"]})", 0),
          "\"__metadata__\" must be an object of strings, found array");
    check(make_file(R"({"__metadata__":{"epoch":3}})", 0),
          "\"__metadata__\" value for \"epoch\" must be a string, found number 3");
  }
}

TEST_CASE("every truncation and every corrupted byte of a valid file is handled", "[safetensors]") {
  const std::string header = object({R"("__metadata__":{"k":"v"})", entry("a", "F32", "[2]", 0, 8),
                                     entry("b", "I8", "[3]", 8, 11)});
  const std::vector<std::byte> good = make_file(header, 11);
  REQUIRE_NOTHROW(st::parse(good, "good.safetensors"));

  for (std::size_t size = 0; size < good.size(); ++size) {
    INFO("truncated to " << size << " bytes");
    const std::vector<std::byte> truncated(good.begin(), good.begin() + size);
    CHECK_THROWS_AS(st::parse(truncated, "cut.safetensors"), flexnn::Error);
  }
  // A flipped byte may still leave a valid file (say, inside the data); it must never crash or
  // throw anything but flexnn::Error.
  for (std::size_t at = 0; at < 8 + header.size(); ++at) {
    for (const std::byte flip : {std::byte{0x01}, std::byte{0x80}, std::byte{0xff}}) {
      INFO("byte " << at << " xor " << std::to_integer<int>(flip));
      std::vector<std::byte> corrupt = good;
      corrupt[at] ^= flip;
      try {
        st::parse(std::move(corrupt), "corrupt.safetensors");
      } catch (const flexnn::Error&) {
      }
    }
  }
}

TEST_CASE("read reports files it cannot open", "[safetensors]") {
  TempDir dir;
  CHECK_THROWS_WITH(st::read(dir.path() / "absent.safetensors"),
                    Contains("absent.safetensors") && Contains("cannot open"));
  CHECK_THROWS_WITH(st::read(dir.path()), Contains("not a regular file"));
}

TEST_CASE("write rejects invalid tensors before touching the disk", "[safetensors]") {
  TempDir dir;
  const fs::path path = dir.path() / "bad.safetensors";
  const auto four = as_bytes(std::vector<float>{1, 2, 3, 4});
  const auto rejects = [&](const std::vector<st::TensorView>& tensors, const std::string& phrase) {
    CHECK_THROWS_WITH(st::write(path, tensors, {}),
                      Contains("bad.safetensors") && Contains(phrase));
    CHECK(list_dir(dir.path()).empty());
  };
  rejects(
      {{"w", st::DType::F32, {4}, four.data(), 16}, {"w", st::DType::F32, {4}, four.data(), 16}},
      "duplicate tensor name 'w'");
  rejects({{"__metadata__", st::DType::F32, {4}, four.data(), 16}}, "\"__metadata__\" is reserved");
  rejects({{"w", st::DType::F32, {3}, four.data(), 16}},
          "tensor 'w': shape [3] of F32 needs 12 bytes but 16 were given");
  rejects({{"w", st::DType::F32, {}, four.data(), 16}},
          "tensor 'w': shape [] of F32 needs 4 bytes but 16 were given");
  rejects({{"w", st::DType::F32, {-4}, four.data(), 16}},
          "tensor 'w': shape dimension 0 is negative");
  rejects({{"w", st::DType::F32, {1LL << 62, 8}, four.data(), 16}},
          "overflows the 64-bit byte count");
  rejects({{"w", st::DType::F32, {4}, nullptr, 16}}, "tensor 'w': data is null but nbytes is 16");
  CHECK_THROWS_WITH(st::write(path, {}, {{"bad", "\xff"}}), Contains("must be valid UTF-8"));
  CHECK(list_dir(dir.path()).empty());
}

TEST_CASE("write into a missing directory throws and creates nothing", "[safetensors]") {
  TempDir dir;
  const fs::path missing = dir.path() / "no" / "such" / "dir";
  CHECK_THROWS_WITH(st::write(missing / "model.safetensors", {}, {}),
                    Contains("model.safetensors") && Contains("cannot create temporary file"));
  CHECK_FALSE(fs::exists(dir.path() / "no"));
  CHECK(list_dir(dir.path()).empty());
}

TEST_CASE("write replaces an existing file atomically and leaves no temporaries", "[safetensors]") {
  TempDir dir;
  const fs::path path = dir.path() / "model.safetensors";
  const std::vector<float> big(10000, 7.0f);
  const auto big_bytes = as_bytes(big);
  st::write(path, {{"w", st::DType::F32, {10000}, big_bytes.data(), big_bytes.size()}},
            {{"version", "1"}});

  SECTION("a successful write fully replaces the old content") {
    const auto small = as_bytes(std::vector<int32_t>{1, 2});
    st::write(path, {{"v", st::DType::I32, {2}, small.data(), small.size()}}, {{"version", "2"}});
    const st::File file = st::read(path);
    REQUIRE(file.tensors.size() == 1);
    CHECK(file.tensors[0].name == "v");
    CHECK(file.metadata.at("version") == "2");
    CHECK(file.bytes.size() == file.data_start + 8);
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("a failed write leaves the old file untouched") {
    const auto before = read_bytes(path);
    CHECK_THROWS_AS(st::write(path, {{"w", st::DType::F32, {2}, big_bytes.data(), 4}}, {}),
                    flexnn::Error);
    CHECK(read_bytes(path) == before);
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("a failed rename removes the temporary file") {
    // The target is a non-empty directory: the data is written, then the rename fails.
    const fs::path blocked = dir.path() / "blocked";
    fs::create_directories(blocked / "inside");
    CHECK_THROWS_WITH(
        st::write(blocked, {{"w", st::DType::F32, {10000}, big_bytes.data(), big_bytes.size()}},
                  {}),
        Contains("cannot rename"));
    CHECK(fs::is_directory(blocked / "inside"));
    CHECK(list_dir(dir.path()) == std::vector<std::string>{"blocked", "model.safetensors"});
  }
}
