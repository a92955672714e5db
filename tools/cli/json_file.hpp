// Reading a JSON file the CLI wrote (a run's summary, a cached report): a missing, unreadable or
// invalid file is a discarded value, for the caller to treat as "not there".
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace flexnn::cli {

inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);  // discarded (not an error) when unreadable
}

}  // namespace flexnn::cli
