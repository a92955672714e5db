// The per-example merge of restarts.
#include "attacks/restarts.hpp"

#include "attacks/threat_model.hpp"

namespace flexnn::attacks {

void WorstOfRestarts::add(const Tensor& x, const std::vector<uint8_t>& broken, const std::vector<float>& score) {
  FLEXNN_CHECK(x.dim() >= 1 && broken.size() == static_cast<size_t>(x.size(0)) && score.size() == broken.size(),
               "restarts: {} verdicts and {} scores for a batch {}", broken.size(), score.size(), shape_str(x.shape()));
  if (!x_.defined()) {
    x_ = x, broken_ = broken, score_ = score;
    return;
  }
  FLEXNN_CHECK(x.shape() == x_.shape(), "restarts: a restart of shape {} after one of {}", shape_str(x.shape()),
               shape_str(x_.shape()));
  std::vector<uint8_t> take(broken.size());
  for (size_t i = 0; i < broken.size(); ++i) {
    const bool now = broken[i] != 0, before = broken_[i] != 0;
    take[i] = !before && (now || score[i] > score_[i]);
    if (take[i]) broken_[i] = now, score_[i] = score[i];
  }
  x_ = select_examples(take, x, x_);
}

}  // namespace flexnn::attacks
