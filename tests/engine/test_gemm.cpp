// Tests of cpu::gemm against a direct double-precision loop written here: every transpose
// combination, odd and edge sizes in each dimension, K crossing several blocks, leading dimensions
// wider than the matrices, alpha and beta (beta = 0 must ignore NaN in C), bit-identical
// results for any thread count, and products with a PackedA (packed from a matrix, or written
// block by block) and with a PackedB bit-identical to the plain ones.
#include <catch2/catch.hpp>

#include "random_values.hpp"
#include "test_helpers.hpp"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/parallel.hpp"

namespace flexnn {
namespace {

using testing::random_values;

struct GemmCase {
  bool trans_a, trans_b;
  int64_t m, n, k;
  float alpha, beta;
  int64_t pad;  // extra columns in each stored row (leading dimension = width + pad)
};

// Runs cpu::gemm on random operands and checks every element of C (and that the padding between
// C's rows is untouched) against the direct loop in double.
void check_gemm(const GemmCase& t) {
  const int64_t a_rows = t.trans_a ? t.k : t.m, a_cols = t.trans_a ? t.m : t.k;
  const int64_t b_rows = t.trans_b ? t.n : t.k, b_cols = t.trans_b ? t.k : t.n;
  const int64_t lda = a_cols + t.pad, ldb = b_cols + t.pad, ldc = t.n + t.pad;
  const std::vector<float> a = random_values(a_rows * lda, 1), b = random_values(b_rows * ldb, 2);
  std::vector<float> c = random_values(t.m * ldc, 3);
  if (t.beta == 0.0f) {
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) c[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
  }
  const std::vector<float> c0 = c;
  cpu::gemm(t.trans_a, t.trans_b, t.m, t.n, t.k, t.alpha, a.data(), lda, b.data(), ldb, t.beta, c.data(), ldc);

  auto op_a = [&](int64_t i, int64_t p) { return double(t.trans_a ? a[p * lda + i] : a[i * lda + p]); };
  auto op_b = [&](int64_t p, int64_t j) { return double(t.trans_b ? b[j * ldb + p] : b[p * ldb + j]); };
  const double tolerance = 1e-6 * (4.0 + std::sqrt(double(t.k))) * (1.0 + std::abs(t.alpha));
  int64_t bad = 0;
  for (int64_t i = 0; i < t.m; ++i) {
    for (int64_t j = 0; j < t.n; ++j) {
      double dot = 0, magnitude = 0;
      for (int64_t p = 0; p < t.k; ++p) {
        dot += op_a(i, p) * op_b(p, j);
        magnitude += std::abs(op_a(i, p) * op_b(p, j));
      }
      const double old = t.beta == 0.0f ? 0.0 : double(t.beta) * c0[i * ldc + j];
      const double expected = t.alpha * dot + old;
      const double got = c[i * ldc + j];
      if (!(std::abs(got - expected) <= tolerance * (1.0 + std::abs(t.alpha) * magnitude + std::abs(old)))) ++bad;
    }
    for (int64_t j = t.n; j < ldc; ++j)
      if (std::memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) != 0) ++bad;
  }
  INFO("trans_a " << t.trans_a << " trans_b " << t.trans_b << " m " << t.m << " n " << t.n << " k " << t.k
                  << " alpha " << t.alpha << " beta " << t.beta << " pad " << t.pad);
  CHECK(bad == 0);
}

TEST_CASE("gemm matches a direct loop for every transpose, odd sizes, alpha and beta", "[gemm]") {
  const int64_t sizes[] = {1, 7, 33, 100, 129};
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (int64_t m : sizes)
        for (int64_t n : sizes)
          for (int64_t k : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{129}}) {
            // Cycle alpha, beta and padding through the cases so each combination is covered.
            const int64_t idx = m + 3 * n + 5 * k + 7 * trans_a + 11 * trans_b;
            const float alphas[] = {1.0f, -0.75f, 2.5f};
            const float betas[] = {0.0f, 1.0f, 0.5f};
            check_gemm({trans_a, trans_b, m, n, k, alphas[idx % 3], betas[(idx / 3) % 3], (idx % 2) * 5});
          }
}

TEST_CASE("gemm with K across several blocks and wide leading dimensions", "[gemm]") {
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        check_gemm({trans_a, trans_b, 37, 70, 1100, 1.5f, beta, 3});
        check_gemm({trans_a, trans_b, 16, 48, 800, -1.0f, beta, 1});
        check_gemm({trans_a, trans_b, 100, 120, 2000, 1.0f, beta, 0});
      }
}

TEST_CASE("gemm with K = 0 or alpha = 0 scales C by beta", "[gemm]") {
  for (float beta : {0.0f, 1.0f, 0.5f}) {
    check_gemm({false, false, 9, 40, 0, 1.0f, beta, 2});
    check_gemm({true, false, 9, 40, 17, 0.0f, beta, 2});
  }
}

TEST_CASE("gemm of shapes the layers use (linear and im2col convolution)", "[gemm]") {
  check_gemm({false, true, 100, 120, 6912, 1.0f, 0.0f, 0});  // linear forward x W^T
  check_gemm({false, false, 100, 500, 120, 1.0f, 0.0f, 0});  // dX = G W (a column slice)
  check_gemm({true, false, 120, 300, 100, 1.0f, 0.0f, 0});   // dW = G^T X
  check_gemm({false, false, 64, 900, 27, 1.0f, 0.0f, 0});    // conv forward W cols
  check_gemm({true, false, 288, 450, 64, 1.0f, 0.0f, 0});    // conv input gradient W^T dY
  check_gemm({false, true, 64, 288, 1800, 1.0f, 1.0f, 0});   // conv weight gradient dY cols^T, accumulating
}

TEST_CASE("gemm is bit-identical for any thread count", "[gemm]") {
  const int saved = cpu::num_threads();
  // Spans several tiles in M and N, several K blocks and, with the larger shape, several packing
  // super-blocks.
  struct Shape3 {
    int64_t m, n, k;
  };
  for (const Shape3 s : {Shape3{300, 700, 900}, Shape3{1100, 2096, 1300}})
    for (bool trans_a : {false, true})
      for (bool trans_b : {false, true}) {
        const int64_t a_size = s.m * s.k, b_size = s.k * s.n;
        const std::vector<float> a = random_values(a_size, 4), b = random_values(b_size, 5);
        const std::vector<float> c_init = random_values(s.m * s.n, 6);
        std::vector<std::vector<float>> results;
        for (int threads : {1, 2, 3}) {
          cpu::set_num_threads(threads);
          std::vector<float> c = c_init;
          cpu::gemm(trans_a, trans_b, s.m, s.n, s.k, 0.5f, a.data(), trans_a ? s.m : s.k, b.data(),
                    trans_b ? s.k : s.n, 0.25f, c.data(), s.n);
          results.push_back(std::move(c));
        }
        cpu::set_num_threads(saved);
        INFO("m " << s.m << " n " << s.n << " k " << s.k << " trans_a " << trans_a << " trans_b " << trans_b);
        CHECK(std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)) == 0);
        CHECK(std::memcmp(results[0].data(), results[2].data(), results[0].size() * sizeof(float)) == 0);
      }
  cpu::set_num_threads(saved);
}

// Fills `packed` (reset to m x k) with the row-major matrix a [m, k] by write() calls of
// column-major blocks of varied sizes (rows split at `row_cuts`, columns every `col_step`), the
// blocks in a scrambled order and spread over the thread pool.
void write_blocks(cpu::PackedA& packed, const std::vector<float>& a, int64_t m, int64_t k,
                  const std::vector<int64_t>& row_cuts, int64_t col_step) {
  packed.reset(m, k);
  std::vector<int64_t> rows = row_cuts;
  rows.push_back(m);
  struct Block {
    int64_t r0, rows, c0, cols;
  };
  std::vector<Block> blocks;
  int64_t r0 = 0;
  for (int64_t r1 : rows) {
    for (int64_t c0 = 0; c0 < k; c0 += col_step) blocks.push_back({r0, r1 - r0, c0, std::min(col_step, k - c0)});
    r0 = r1;
  }
  std::reverse(blocks.begin(), blocks.end());
  std::rotate(blocks.begin(), blocks.begin() + static_cast<int64_t>(blocks.size()) / 3, blocks.end());
  cpu::parallel_for(0, static_cast<int64_t>(blocks.size()), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const Block& block = blocks[b];
      const int64_t ld = block.rows + 3;  // an odd stride between the block's columns
      std::vector<float> column_major(ld * block.cols);
      for (int64_t q = 0; q < block.cols; ++q)
        for (int64_t r = 0; r < block.rows; ++r) column_major[q * ld + r] = a[(block.r0 + r) * k + block.c0 + q];
      packed.write(block.r0, block.rows, block.c0, block.cols, column_major.data(), ld);
    }
  });
}

TEST_CASE("gemm with a packed A, and with packed A and B, is bit-identical to gemm, for any thread count", "[gemm]") {
  const int saved = cpu::num_threads();
  struct PackedCase {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    bool written;  // A written block by block (rows cut every 16, columns every 16), not packed
  };
  // Edge tiles in M and N, one and several K blocks, operands packed with one thread count and
  // used with others, and one PackedA and one PackedB object reused for every case (smaller
  // after larger).
  const std::vector<PackedCase> cases = {
      {false, false, 512, 196, 4608, 1.0f, 0.0f, false},  // a convolution's weight x a group's columns
      {true, false, 4608, 196, 512, 1.0f, 0.0f, false},   // its transpose x a group's output gradient
      {false, true, 32, 112, 512, 1.0f, 0.0f, true},      // Winograd: output channels x 112 tiles
      {false, true, 37, 45, 13, 0.5f, 0.25f, false},      {true, true, 9, 70, 900, -1.5f, 1.0f, false},
      {false, false, 1, 1, 1, 2.0f, 0.0f, false},         {true, false, 130, 33, 1000, 1.0f, 0.5f, false},
      {true, false, 130, 33, 1000, 1.0f, 0.5f, true},     {true, false, 20, 50, 30, 0.0f, 0.5f, false},
      {false, false, 9, 40, 0, 1.0f, 0.5f, false},  // K = 0: C scaled by beta
  };
  cpu::PackedA packed;
  cpu::PackedB packed_b;
  for (const PackedCase& t : cases) {
    const int64_t pad = 3;
    const int64_t lda = (t.trans_a ? t.m : t.k) + pad, ldb = (t.trans_b ? t.k : t.n) + pad, ldc = t.n + pad;
    const std::vector<float> a = random_values((t.trans_a ? t.k : t.m) * lda, 7);
    const std::vector<float> b = random_values((t.trans_b ? t.n : t.k) * ldb, 8);
    std::vector<float> c_init = random_values(t.m * ldc, 9);
    if (t.beta == 0.0f) c_init[0] = std::numeric_limits<float>::quiet_NaN();  // must be ignored
    std::vector<float> expected = c_init;
    cpu::set_num_threads(1);
    cpu::gemm(t.trans_a, t.trans_b, t.m, t.n, t.k, t.alpha, a.data(), lda, b.data(), ldb, t.beta, expected.data(), ldc);
    cpu::set_num_threads(2);
    if (t.written) {
      std::vector<float> op_a(t.m * t.k);  // op(A), row-major
      for (int64_t i = 0; i < t.m; ++i)
        for (int64_t p = 0; p < t.k; ++p) op_a[i * t.k + p] = t.trans_a ? a[p * lda + i] : a[i * lda + p];
      write_blocks(packed, op_a, t.m, t.k, {16}, 16);
    } else {
      packed.pack(t.trans_a, t.m, t.k, a.data(), lda);
    }
    packed_b.pack(t.trans_b, t.k, t.n, b.data(), ldb);
    REQUIRE(packed.m() == t.m);
    REQUIRE(packed.k() == t.k);
    REQUIRE(packed_b.k() == t.k);
    REQUIRE(packed_b.n() == t.n);
    for (int threads : {1, 2, 3}) {
      cpu::set_num_threads(threads);
      INFO("trans_a " << t.trans_a << " trans_b " << t.trans_b << " m " << t.m << " n " << t.n << " k " << t.k
                      << " written " << t.written << " threads " << threads);
      std::vector<float> c = c_init;
      cpu::gemm(packed, t.trans_b, t.n, t.alpha, b.data(), ldb, t.beta, c.data(), ldc);
      CHECK(testing::bit_identical(c, expected));
      c = c_init;
      cpu::gemm(packed, packed_b, t.alpha, t.beta, c.data(), ldc);
      CHECK(testing::bit_identical(c, expected));
    }
  }
  cpu::set_num_threads(saved);
  // A PackedA of a fresh object matches too (no state carried over from the repacked one).
  const std::vector<float> a = random_values(20 * 30, 10), b = random_values(30 * 50, 11);
  std::vector<float> c1(20 * 50), c2(20 * 50);
  cpu::gemm(false, false, 20, 50, 30, 1.0f, a.data(), 30, b.data(), 50, 0.0f, c1.data(), 50);
  cpu::gemm(cpu::PackedA(false, 20, 30, a.data(), 30), false, 50, 1.0f, b.data(), 50, 0.0f, c2.data(), 50);
  CHECK(testing::bit_identical(c1, c2));
}

TEST_CASE("a PackedA written in blocks of any size and order is bit-identical to one packed", "[gemm]") {
  struct WrittenCase {
    int64_t m, k;
    std::vector<int64_t> row_cuts;  // where row blocks start (after 0)
    int64_t col_step;
  };
  // Rows not a multiple of any panel height, blocks that start and end inside panels, column
  // blocks across KC block boundaries (k = 1000: three blocks), single columns, one element.
  const std::vector<WrittenCase> cases = {
      {512, 512, {16, 32, 48, 64, 128, 256, 400}, 16},  // Winograd's 16-row blocks
      {37, 1000, {5, 13, 14, 30}, 77},
      {130, 700, {64}, 1},
      {9, 13, {}, 13},
      {1, 1, {}, 1},
  };
  const int saved = cpu::num_threads();
  cpu::PackedA written;
  written.pack(false, 600, 900, random_values(600 * 900, 20).data(), 900);  // reset() reuses a packed one
  for (const WrittenCase& t : cases) {
    const std::vector<float> a = random_values(t.m * t.k, 21), b = random_values(t.k * 45, 22);
    std::vector<float> expected(t.m * 45), c(t.m * 45);
    cpu::gemm(cpu::PackedA(false, t.m, t.k, a.data(), t.k), false, 45, 1.5f, b.data(), 45, 0.0f, expected.data(), 45);
    for (int threads : {1, 2, 3}) {
      cpu::set_num_threads(threads);
      write_blocks(written, a, t.m, t.k, t.row_cuts, t.col_step);
      REQUIRE(written.m() == t.m);
      REQUIRE(written.k() == t.k);
      std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
      cpu::gemm(written, false, 45, 1.5f, b.data(), 45, 0.0f, c.data(), 45);
      INFO("m " << t.m << " k " << t.k << " threads " << threads);
      CHECK(testing::bit_identical(c, expected));
    }
  }
  cpu::set_num_threads(saved);
}

TEST_CASE("gemm of packed operands with different inner sizes throws", "[gemm]") {
  const std::vector<float> a = random_values(6 * 7, 26), b = random_values(8 * 5, 27);
  std::vector<float> c(6 * 5);
  cpu::PackedA packed_a(false, 6, 7, a.data(), 7);
  cpu::PackedB packed_b;
  packed_b.pack(false, 8, 5, b.data(), 5);
  CHECK_THAT(testing::error_message([&] { cpu::gemm(packed_a, packed_b, 1.0f, 0.0f, c.data(), 5); }),
             Catch::Contains("expected packed operands of one inner size, found A 6x7 and B 8x5"));
}

}  // namespace
}  // namespace flexnn
