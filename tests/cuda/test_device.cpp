// The CUDA device as the engine sees it: tensors moved and copied between devices bit for bit,
// factories on the device, differentiable to(), Module::to, the caching allocator's reuse and its
// out-of-memory error, device parsing, and checkpoints written from and read into a CUDA model.
#include "engine/allocator.hpp"
#include "engine/flexnn.hpp"
#include "models/small_cnn.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"

#include <catch2/catch.hpp>

using namespace flexnn;
using flexnn::testing::bit_identical;
using flexnn::testing::error_message;

TEST_CASE("tensors move to the CUDA device and back bit for bit", "[cuda][device]") {
  REQUIRE(cuda_available());
  const std::vector<float> values = {1.5f, -0.0f, 3e-39f, 1e30f, -7.25f, 0.1f, 42.0f};
  const Tensor host = Tensor::from_vector(values, {7});
  const Tensor on_device = host.to(kCUDA);
  CHECK(on_device.device() == kCUDA);
  CHECK(on_device.shape() == host.shape());
  CHECK(on_device.raw_data() != host.raw_data());
  CHECK(bit_identical(on_device.to_vector(), values));
  CHECK(bit_identical(on_device.to(kCPU).to_vector(), values));
  CHECK(on_device.to(kCUDA).same(on_device));  // already there: the same tensor

  const Tensor labels = Tensor::from_indices({3, -1, 9}, {3}, kCUDA);
  CHECK(labels.to(kCPU).data<int64_t>()[1] == -1);
  CHECK(Tensor::from_indices({5}, {1}, kCUDA).item() == 5.0f);
  CHECK(Tensor::scalar(2.5f, kCUDA).item() == 2.5f);
}

TEST_CASE("factories, clone, copy_ and fill_ work on the device", "[cuda][device]") {
  CHECK(bit_identical(Tensor::zeros({5, 3}, DType::Float32, kCUDA).to_vector(), std::vector<float>(15, 0.0f)));
  CHECK(bit_identical(Tensor::full({1000}, -3.5f, kCUDA).to_vector(), std::vector<float>(1000, -3.5f)));
  CHECK(bit_identical(Tensor::arange(0, 5, 1, kCUDA).to_vector(), {0, 1, 2, 3, 4}));

  Generator a(7), b(7);
  CHECK(bit_identical(Tensor::randn({33}, a, 0, 1, kCUDA).to_vector(), Tensor::randn({33}, b).to_vector()));
  CHECK(a.offset() == b.offset());

  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 2}, kCUDA);
  const Tensor copy = x.clone();
  x.fill_(9.0f);
  CHECK(bit_identical(copy.to_vector(), {1, 2, 3, 4}));
  CHECK(bit_identical(x.to_vector(), {9, 9, 9, 9}));

  Tensor host = Tensor::zeros({2, 2});
  host.copy_(copy);  // device to host
  CHECK(bit_identical(host.to_vector(), {1, 2, 3, 4}));
  x.copy_(Tensor::from_vector({5, 6, 7, 8}, {2, 2}));  // host to device
  CHECK(bit_identical(x.to_vector(), {5, 6, 7, 8}));
  Tensor(copy).copy_(x);  // device to device
  CHECK(bit_identical(copy.to_vector(), {5, 6, 7, 8}));
  CHECK_THAT(error_message([&] { x.copy_(Tensor::zeros({3})); }),
             Catch::Contains("copy_") && Catch::Contains("[3]") && Catch::Contains("[2, 2]"));

  // A view keeps its offset on the device.
  const Tensor rows = ops::slice(Tensor::arange(0, 12, 1, kCUDA).reshape({4, 3}), 0, 1, 3);
  CHECK(bit_identical(rows.to_vector(), {3, 4, 5, 6, 7, 8}));
}

TEST_CASE("to() is differentiable across devices", "[cuda][device]") {
  Tensor x = Tensor::from_vector({1, -2, 3}, {3}).requires_grad_();
  const Tensor y = ops::sum(ops::mul(x.to(kCUDA), 2.0f));
  CHECK(y.device() == kCUDA);
  y.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == kCPU);
  CHECK(bit_identical(x.grad().to_vector(), {2, 2, 2}));
}

TEST_CASE("ops refuse tensors on different devices", "[cuda][device]") {
  const Tensor a = Tensor::ones({3}), b = Tensor::ones({3}, kCUDA);
  const std::string message = error_message([&] { (void)ops::add(a, b); });
  CHECK_THAT(message, Catch::Contains("add") && Catch::Contains("cpu") && Catch::Contains("cuda"));
}

TEST_CASE("Module::to moves every parameter and buffer in place", "[cuda][device]") {
  Generator gen(3);
  auto model = models::make_small_cnn(1, 16, 4, 8, gen);
  const std::vector<Tensor> handles = model->parameters();
  std::vector<std::vector<float>> before;
  for (const Tensor& p : handles) before.push_back(p.to_vector());
  model->to(kCUDA);
  CHECK(model->device() == kCUDA);
  for (size_t i = 0; i < handles.size(); ++i) {
    CHECK(handles[i].device() == kCUDA);  // handles held elsewhere follow
    CHECK(handles[i].requires_grad());
    CHECK(bit_identical(handles[i].to_vector(), before[i]));
  }
  for (const auto& [name, t] : model->state()) CHECK(t.device() == kCUDA);
  model->to(kCPU);
  for (size_t i = 0; i < handles.size(); ++i) CHECK(bit_identical(handles[i].to_vector(), before[i]));
}

TEST_CASE("the CUDA caching allocator reuses freed blocks", "[cuda][device][allocator]") {
  empty_cache(DeviceType::CUDA);
  const void* first = nullptr;
  {
    const Tensor t = Tensor::empty({1000, 100}, DType::Float32, kCUDA);
    first = t.raw_data();
  }
  CHECK(cached_bytes(DeviceType::CUDA) >= 400000);
  const Tensor again = Tensor::empty({1000, 100}, DType::Float32, kCUDA);
  CHECK(again.raw_data() == first);
  CHECK(cached_bytes(DeviceType::CUDA) == 0);
  empty_cache(DeviceType::CPU);  // the CPU's cache is its own
  CHECK(cached_bytes(DeviceType::CUDA) == 0);
}

TEST_CASE("the allocator counts the bytes in use and their peak, whole blocks", "[cuda][device][allocator]") {
  empty_cache(DeviceType::CUDA);
  const std::size_t base = allocated_bytes(DeviceType::CUDA);
  reset_peak_allocated_bytes(DeviceType::CUDA);
  {
    const Tensor big = Tensor::empty({1 << 20}, DType::Float32, kCUDA);  // 4 MiB
    CHECK(allocated_bytes(DeviceType::CUDA) == base + (4 << 20));
    {
      // A cached block up to twice the request serves it, and is counted (and cached again) whole.
      const Tensor small = Tensor::empty({1000}, DType::Float32, kCUDA);
      CHECK(allocated_bytes(DeviceType::CUDA) == base + (4 << 20) + 4096);
    }
    CHECK(peak_allocated_bytes(DeviceType::CUDA) == base + (4 << 20) + 4096);
  }
  CHECK(allocated_bytes(DeviceType::CUDA) == base);
  CHECK(cached_bytes(DeviceType::CUDA) == (4 << 20) + 4096);
  {
    const Tensor reused = Tensor::empty({(3 << 20) / 4}, DType::Float32, kCUDA);  // 3 MiB: takes the 4 MiB block
    CHECK(allocated_bytes(DeviceType::CUDA) == base + (4 << 20));
  }
  CHECK(cached_bytes(DeviceType::CUDA) == (4 << 20) + 4096);  // the whole 4 MiB again, not 3
  reset_peak_allocated_bytes(DeviceType::CUDA);
  CHECK(peak_allocated_bytes(DeviceType::CUDA) == base);
  empty_cache(DeviceType::CUDA);
  CHECK(cached_bytes(DeviceType::CUDA) == 0);
}

TEST_CASE("running out of device memory is a flexnn::Error naming the request", "[cuda][device][allocator]") {
  const int64_t huge = int64_t{1} << 48;  // 1 PiB of float32: more than any device has
  const std::string message = error_message([&] { (void)Tensor::empty({huge}, DType::Float32, kCUDA); });
  CHECK_THAT(message, Catch::Contains("CUDA out of memory") && Catch::Contains(std::to_string(huge * 4)));
  CHECK(Tensor::ones({4}, kCUDA).to_vector() == std::vector<float>(4, 1.0f));  // still usable
}

TEST_CASE("devices parse from their names", "[cuda][device]") {
  CHECK(parse_device("cpu") == kCPU);
  CHECK(parse_device("cuda") == kCUDA);
  CHECK(parse_device("cuda:0") == kCUDA);
  CHECK(kCUDA.str() == "cuda");
  CHECK_THAT(error_message([] { (void)parse_device("gpu"); }),
             Catch::Contains("'cpu', 'cuda' or 'cuda:0'") && Catch::Contains("'gpu'"));
#if defined(FLEXNN_CUDA_EMULATED)
  CHECK(!gpu_available());
  CHECK(default_device() == kCPU);  // the emulator is never the default
#endif
}

TEST_CASE("checkpoints are written from and read into a model on the device", "[cuda][device][checkpoint]") {
  flexnn::testing::TempDir dir;
  Generator gen(11), other(12);
  auto model = models::make_small_cnn(1, 16, 4, 8, gen);
  const std::vector<Tensor> original = model->parameters();
  std::vector<std::vector<float>> values;
  for (const Tensor& p : original) values.push_back(p.to_vector());
  model->to(kCUDA);
  save_checkpoint(*model, dir.path() / "m.safetensors", {});
  auto loaded = models::make_small_cnn(1, 16, 4, 8, other);
  loaded->to(kCUDA);
  load_checkpoint(*loaded, dir.path() / "m.safetensors");
  const std::vector<Tensor> params = loaded->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    CHECK(params[i].device() == kCUDA);
    CHECK(bit_identical(params[i].to_vector(), values[i]));
  }
}
