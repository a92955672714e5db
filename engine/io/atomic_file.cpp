// write_file_atomically: POSIX open / write / fsync / rename, then a best-effort directory sync.
#include "engine/io/atomic_file.hpp"

#include "engine/error.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace flexnn {
namespace {

std::string errno_message(int error) { return std::generic_category().message(error); }

void write_all(int fd, const std::byte* bytes, std::size_t size, const std::string& temp, std::string_view what) {
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, std::min<std::size_t>(size, std::size_t{1} << 30));
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) fail("{} write: cannot write '{}': {}", what, temp, errno_message(errno));
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
}

// Flushes the directory entry of a completed rename to disk. Best effort: the new file is already
// complete and in place, so a failure here is not reported.
void sync_directory(const std::filesystem::path& file) {
  const std::filesystem::path directory = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, const std::vector<std::span<const std::byte>>& parts,
                           std::string_view what) {
  const std::string target = path.string();
  std::filesystem::path temp_path = path;
  temp_path += ".tmp-" + std::to_string(::getpid());
  const std::string temp = temp_path.string();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{} write '{}': cannot create temporary file '{}': {}", what, target, temp, errno_message(errno));
  // From here on, any failure removes the temporary file; `path` is untouched until the rename.
  try {
    for (std::span<const std::byte> part : parts) write_all(fd, part.data(), part.size(), temp, what);
    if (::fsync(fd) != 0) fail("{} write: cannot flush '{}' to disk: {}", what, temp, errno_message(errno));
    if (::close(std::exchange(fd, -1)) != 0) fail("{} write: cannot close '{}': {}", what, temp, errno_message(errno));
    std::error_code error;
    std::filesystem::rename(temp_path, path, error);
    if (error) fail("{} write '{}': cannot rename '{}' over it: {}", what, target, temp, error.message());
  } catch (...) {
    if (fd >= 0) ::close(fd);
    std::error_code ignored;
    std::filesystem::remove(temp_path, ignored);
    throw;
  }
  sync_directory(path);
}

void write_text_atomically(const std::filesystem::path& path, std::string_view text, std::string_view what) {
  write_file_atomically(path, {std::as_bytes(std::span(text.data(), text.size()))}, what);
}

}  // namespace flexnn
