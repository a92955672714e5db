// Atomic file writes: the bytes go to a temporary file beside the target, are flushed to disk,
// and the temporary is renamed over the target, so a crash or a full disk never leaves a
// half-written file and never destroys the previous version. Used for checkpoints, logs and
// reports alike.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace flexnn {

// Writes the parts, one after another, as the new content of `path`. `what` names the kind of
// file in error messages ("safetensors", "JSON", ...). Throws flexnn::Error on any failure,
// leaving `path` as it was and no temporary file behind.
void write_file_atomically(const std::filesystem::path& path, const std::vector<std::span<const std::byte>>& parts,
                           std::string_view what);
void write_text_atomically(const std::filesystem::path& path, std::string_view text, std::string_view what);

}  // namespace flexnn
