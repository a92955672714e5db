// config_value: reads one value of a model's JSON config with a clear error naming the key when it
// is missing or has the wrong type (an integer must be one: 32.5 is not read as 32). Shared by the
// registry and every model that reads its own options.
#pragma once

#include "engine/error.hpp"

#include <nlohmann/json.hpp>

#include <type_traits>

namespace flexnn::models {

template <typename T>
T config_value(const nlohmann::json& config, const char* key) {
  FLEXNN_CHECK(config.contains(key), "model config: missing key \"{}\" in {}", key, config.dump());
  const nlohmann::json& value = config.at(key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    FLEXNN_CHECK(value.is_number_integer(), "model config: \"{}\" must be an integer, found {}", key, value.dump());
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("model config: \"{}\" has the wrong type: {}", key, value.dump());
  }
}

}  // namespace flexnn::models
