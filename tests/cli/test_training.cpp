// Tests of the trainer's pieces that the end-to-end CLI tests cannot see: the parameter groups of
// the paper's recipe (thresholds without weight decay).
#include <catch2/catch.hpp>

#include "models/registry.hpp"
#include "tools/cli/training.hpp"

namespace flexnn {

TEST_CASE("the training recipe exempts thresholds, and only them, from weight decay", "[training]") {
  cli::TrainingOptions options;
  options.weight_decay = 0.006f;
  options.lr = 0.002f;
  const auto model = models::build_model({{"model", "fmnist-small"}, {"flex", "standard"}});
  const cli::ParameterGroups g = cli::parameter_groups(*model, options);
  REQUIRE(g.groups.size() == 2);
  CHECK(g.groups[0].options.weight_decay == 0.006f);
  CHECK(g.groups[1].options.weight_decay == 0.0f);
  for (const optim::ParamGroup& group : g.groups) {
    CHECK(group.options.lr == 0.002f);
    CHECK(group.options.momentum == 0.9f);
  }
  REQUIRE(g.groups[1].params.size() == 1);
  CHECK(g.groups[1].params[0].shape() == Shape{12, 24, 24});
  CHECK(g.groups[0].params.size() == 8);
  CHECK(g.names.back() == "flex.threshold");
  CHECK(g.names.size() == 9);

  // A fixed threshold (uniform, frozen) is no parameter at all: nothing to exempt.
  const auto uniform = models::build_model({{"model", "fmnist-small"}, {"flex", "uniform"}});
  const cli::ParameterGroups u = cli::parameter_groups(*uniform, options);
  CHECK(u.groups[1].params.empty());
  CHECK(u.groups[0].params.size() == 8);
}

}  // namespace flexnn
