// Gathering examples by index.
#include "datasets/labelled_images.hpp"

#include <algorithm>

namespace flexnn::datasets {

LabelledImages take(const LabelledImages& data, std::span<const int64_t> indices) {
  const int64_t n = data.images.size(0);
  FLEXNN_CHECK(data.labels.dim() == 1 && data.labels.size(0) == n, "take: {} images but labels of shape {}", n,
               shape_str(data.labels.shape()));
  Shape shape = data.images.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  LabelledImages batch{Tensor::empty(shape), Tensor::empty({shape[0]}, DType::Int64)};
  const int64_t per_image = n == 0 ? 0 : data.images.numel() / n;
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t k = indices[i];
    FLEXNN_CHECK(k >= 0 && k < n, "take: index {} is outside [0, {})", k, n);
    std::copy_n(data.images.data<float>() + k * per_image, per_image, batch.images.data<float>() + i * per_image);
    batch.labels.data<int64_t>()[i] = data.labels.data<int64_t>()[k];
  }
  return batch;
}

}  // namespace flexnn::datasets
