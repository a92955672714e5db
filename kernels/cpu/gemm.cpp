// GEMM, GotoBLAS/BLIS style: op(A) is packed into MR-tall row panels and op(B) into NR-wide
// column panels (both transposes are handled by the packing, so the register-blocked microkernel
// sees one layout), K is cut into KC blocks and each KC block's MR x NR product is added to C:
// c = alpha * acc for the first block when beta == 0 (C's old contents, NaN included, are
// ignored), c = fma(alpha, acc, beta * c) for the first block otherwise, fma(alpha, acc, c) after.
//
// Determinism: the KC blocks depend only on K, and each C element is the in-order sum over its KC
// blocks of an in-order FMA chain over the block, whatever tile or chunk computes it; so neither
// the chunking nor the thread count can change a bit. Work per call: one parallel pass packs a
// super-block of A and B into a buffer shared by all threads, one parallel pass runs the
// microkernels over disjoint C tiles (tile sizes chosen from the shape alone). A PackedA holds all
// of op(A)'s KC blocks in the same layout, packed once (or written there by a producer of A's
// values); its products then pack only B, and with a PackedB (all of op(B) packed the same way)
// nothing: one pass of microkernels.
//
// Without AVX-512 or AVX2+FMA: single-threaded Eigen products on C blocks spread over the pool.
#include "kernels/cpu/gemm.hpp"

#include "engine/error.hpp"
#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <new>
#include <string>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define FLEXNN_GEMM_PACKED 1
#include <immintrin.h>

#include <cmath>
#else
#include <Eigen/Core>
#endif

namespace flexnn::cpu {
namespace {

#if defined(FLEXNN_GEMM_PACKED)

#if defined(__AVX512F__)

using Vec = __m512;
constexpr int64_t kMR = 8, kLanes = 16;
inline Vec vec_zero() { return _mm512_setzero_ps(); }
inline Vec vec_set(float x) { return _mm512_set1_ps(x); }
inline Vec vec_load(const float* p) { return _mm512_load_ps(p); }
inline Vec vec_loadu(const float* p) { return _mm512_loadu_ps(p); }
inline void vec_storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vec_mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec vec_fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }

#else  // AVX2 + FMA

using Vec = __m256;
constexpr int64_t kMR = 6, kLanes = 8;
inline Vec vec_zero() { return _mm256_setzero_ps(); }
inline Vec vec_set(float x) { return _mm256_set1_ps(x); }
inline Vec vec_load(const float* p) { return _mm256_load_ps(p); }
inline Vec vec_loadu(const float* p) { return _mm256_loadu_ps(p); }
inline void vec_storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vec_mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec vec_fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }

#endif

// The microkernel's tile: MR rows of two vectors; B panels are NR wide.
constexpr int64_t kNR = 2 * kLanes;

// acc[MR x NV vectors] = sum over p < kc of a[p][0..MR) (outer) b[p][0..NV * lanes) (B panels are
// NR apart), an in-order FMA chain per element; then stored to C as in the file comment. NV = 1
// serves a last column panel at most half full.
template <int NV>
void micro_kernel(int64_t kc, const float* a, const float* b, float alpha, float beta, float* c, int64_t ldc) {
  Vec acc[kMR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);  // C's tile arrives during the sums
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NV * kLanes - 1), _MM_HINT_T0);
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = vec_zero();
  }
  for (int64_t p = 0; p < kc; ++p, a += kMR, b += kNR) {
    Vec bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = vec_load(b + v * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const Vec ai = vec_set(a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = vec_fmadd(ai, bv[v], acc[i][v]);
    }
  }
  const Vec va = vec_set(alpha), vb = vec_set(beta);
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      float* out = c + i * ldc + v * kLanes;
      vec_storeu(out, beta == 0.0f ? vec_mul(va, acc[i][v]) : vec_fmadd(va, acc[i][v], vec_mul(vb, vec_loadu(out))));
    }
}

// Cache blocking (Zen 4: L1 32 KiB, L2 1 MiB; measured): within a tile, a KC x NR panel of B
// (48 KiB) is reused by every MR-row panel of the tile's kMC x KC block of A (192 KiB), both in L2.
constexpr int64_t kKC = 384;
constexpr int64_t kMC = 16 * kMR;
constexpr int64_t kNC = 16 * kNR;
// Packed floats per pass over a super-block (A's and B's panels for a range of KC blocks).
constexpr int64_t kPackBudget = int64_t{1} << 21;
// Parallel chunks aimed at per compute pass, each at least kMinChunkFmas multiply-adds; pack
// chunks of at least kMinPackFloats.
constexpr int64_t kTargetChunks = 64;
constexpr int64_t kMinChunkFmas = int64_t{1} << 18;
constexpr int64_t kMinPackFloats = int64_t{1} << 15;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

thread_local AlignedFloats packed_buffer;  // the calling thread's packed super-block

// dst[q * ldd + r] = src[r * ld + q] for r, q < 8, with rows r >= rows read as zeros.
void transpose_8x8(const float* src, int64_t ld, int64_t rows, float* dst, int64_t ldd) {
  __m256 r[8];
#pragma GCC unroll 8
  for (int64_t i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + i * ld) : _mm256_setzero_ps();
  __m256 t[8], s[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {  // t[i] = r[i][0] r[i+1][0] r[i][1] r[i+1][1] | same at 4, 5
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {  // s[i + q] = column q (and q + 4) of rows i..i+3
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(s[q], s[q + 4], 0x20));
    _mm256_storeu_ps(dst + (q + 4) * ldd, _mm256_permute2f128_ps(s[q], s[q + 4], 0x31));
  }
}

// Packs a panel of a matrix X for the product: dst[p * W + r] = X(r0 + r, k0 + p) for p < kc,
// r < W, zero for r >= rows. X(r, p) is x[p * ld + r] when r_contiguous, else x[r * ld + p].
// A panels are op(A) rows (X(r, p) = op(A)[r, p]); B panels are op(B) columns (X(r, p) = op(B)[p, r]).
template <int64_t W>
void pack_panel(const float* x, int64_t ld, bool r_contiguous, int64_t r0, int64_t rows, int64_t k0, int64_t kc,
                float* dst) {
  if (r_contiguous) {
    const float* src = x + k0 * ld + r0;
    for (int64_t p = 0; p < kc; ++p, src += ld, dst += W) {
      if (rows == W) {
        std::copy_n(src, W, dst);
      } else {
        std::copy_n(src, rows, dst);
        std::fill(dst + rows, dst + W, 0.0f);
      }
    }
    return;
  }
  const float* src = x + r0 * ld + k0;
  int64_t p = 0;
  if constexpr (W % 8 == 0) {  // 8 x 8 blocks, eight source rows streamed at a time
    const int64_t k8 = kc / 8 * 8;
    for (int64_t rb = 0; rb < W; rb += 8) {
      const float* rows_src = src + std::min(rb, rows - 1) * ld;  // never read past `rows`
      const int64_t valid = std::clamp<int64_t>(rows - rb, 0, 8);
      for (int64_t q = 0; q < k8; q += 8) transpose_8x8(rows_src + q, ld, valid, dst + q * W + rb, W);
    }
    p = k8;
  }
  for (; p < kc; ++p) {
    int64_t r = 0;
    for (; r < rows; ++r) dst[p * W + r] = src[r * ld + p];
    for (; r < W; ++r) dst[p * W + r] = 0.0f;
  }
}

// The problem and its shape-derived blocking.
struct Plan {
  bool trans_a, trans_b;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
  int64_t kc;          // KC block depth (the last block may be shorter)
  int64_t k_blocks;    // ceil(k / kc)
  int64_t m_panels;    // ceil(m / MR)
  int64_t super_kb;    // KC blocks per super-block
  int64_t super_n;     // columns per super-block, a multiple of NR
  int64_t tile_m;      // compute tile rows, a multiple of MR
  int64_t tile_n;      // compute tile columns, a multiple of NR
  const float* a_packed;  // all of op(A) packed in advance (a PackedA), or null
  const float* b_packed;  // all of op(B) packed in advance (a PackedB, with a PackedA), or null

  int64_t block_depth(int64_t kb) const { return std::min(kc, k - kb * kc); }
};

Plan make_plan(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* a_packed = nullptr,
               const float* b_packed = nullptr) {
  Plan p{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, 0, 0, 0, 0, 0, 0, a_packed, b_packed};
  p.k_blocks = ceil_div(k, kKC);
  p.kc = ceil_div(k, p.k_blocks);  // balanced blocks: no sliver at the end
  p.m_panels = ceil_div(m, kMR);
  const int64_t m_pad = p.m_panels * kMR, n_pad = round_up(n, kNR);
  // Super-block: as many KC blocks as keep A's part within half the budget (all of B's width
  // within the budget when A is packed in advance), then as many columns as fill the rest; all
  // of it when both are packed in advance.
  const int64_t a_pad = a_packed != nullptr ? 0 : m_pad;
  p.super_kb = std::clamp(kPackBudget / ((a_pad > 0 ? 2 * a_pad : n_pad) * p.kc), int64_t{1}, p.k_blocks);
  const int64_t depth = p.super_kb * p.kc;
  p.super_n = std::clamp((kPackBudget - a_pad * depth) / depth / kNR * kNR, kNR, n_pad);
  if (b_packed != nullptr) {
    p.super_kb = p.k_blocks;
    p.super_n = n_pad;
  }
  // Tiles: start from kMC x kNC and halve (columns first: a tile's rows of A stay in L2 while B's
  // panels stream through) while there are too few chunks and each would still have enough work.
  const int64_t n_span = std::min(p.super_n, n_pad);
  p.tile_m = std::min(kMC, m_pad);
  p.tile_n = std::min(kNC, n_span);
  while (ceil_div(m_pad, p.tile_m) * ceil_div(n_span, p.tile_n) < kTargetChunks &&
         p.tile_m * p.tile_n * k >= 2 * kMinChunkFmas) {
    if (p.tile_n > kNR) {
      p.tile_n = round_up(p.tile_n / 2, kNR);
    } else if (p.tile_m > kMR) {
      p.tile_m = round_up(p.tile_m / 2, kMR);
    } else {
      break;
    }
  }
  return p;
}

// Packs KC blocks [kb0, kb0 + kbs) of op(A) (all rows, when pack_a) and of op(B) columns
// [n0, n0 + nw) into `a_packed` / `b_packed`, block by block, panel by panel.
void pack_super_block(const Plan& p, int64_t kb0, int64_t kbs, bool pack_a, int64_t n0, int64_t nw, float* a_packed,
                      float* b_packed) {
  const int64_t a_units = pack_a ? p.m_panels : 0, n_panels = ceil_div(nw, kNR), per_block = a_units + n_panels;
  const int64_t grain = std::max<int64_t>(1, kMinPackFloats / (p.kc * kNR));
  parallel_for(0, kbs * per_block, grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t kb = kb0 + u / per_block, panel = u % per_block;
      const int64_t depth = p.block_depth(kb), k0 = kb * p.kc, offset = (kb - kb0) * p.kc;
      if (panel < a_units) {
        const int64_t r0 = panel * kMR;
        pack_panel<kMR>(p.a, p.lda, p.trans_a, r0, std::min(kMR, p.m - r0), k0, depth,
                        a_packed + offset * p.m_panels * kMR + panel * kMR * depth);
      } else {
        const int64_t j = panel - a_units, c0 = j * kNR;
        pack_panel<kNR>(p.b, p.ldb, !p.trans_b, n0 + c0, std::min(kNR, nw - c0), k0, depth,
                        b_packed + offset * n_panels * kNR + j * kNR * depth);
      }
    }
  });
}

// Runs the microkernels of KC blocks [kb0, kb0 + kbs) over C columns [n0, n0 + nw), tile by tile.
void compute_super_block(const Plan& p, int64_t kb0, int64_t kbs, int64_t n0, int64_t nw, const float* a_packed,
                         const float* b_packed) {
  const int64_t m_pad = p.m_panels * kMR, n_panels = ceil_div(nw, kNR);
  const int64_t tiles_n = ceil_div(nw, p.tile_n), tiles = ceil_div(m_pad, p.tile_m) * tiles_n;
  parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    alignas(64) float edge[kMR * kNR];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row0 = t / tiles_n * p.tile_m, row1 = std::min(row0 + p.tile_m, p.m);
      const int64_t col0 = t % tiles_n * p.tile_n, col1 = std::min(col0 + p.tile_n, nw);
      for (int64_t kb = kb0; kb < kb0 + kbs; ++kb) {
        const int64_t depth = p.block_depth(kb), offset = (kb - kb0) * p.kc;
        const float beta = kb == 0 ? p.beta : 1.0f;
        const float* a_block = a_packed + offset * m_pad;
        const float* b_block = b_packed + offset * n_panels * kNR;
        for (int64_t j = col0; j < col1; j += kNR) {
          const float* b_panel = b_block + j * depth;
          const int64_t cols = std::min(kNR, col1 - j);
          for (int64_t i = row0; i < row1; i += kMR) {
            const float* a_panel = a_block + i * depth;
            const int64_t rows = std::min(kMR, row1 - i);
            float* c = p.c + i * p.ldc + n0 + j;
            const bool half = cols <= kLanes;
            const auto kernel = half ? micro_kernel<1> : micro_kernel<2>;
            if (rows == kMR && cols == (half ? kLanes : kNR)) {
              kernel(depth, a_panel, b_panel, p.alpha, beta, c, p.ldc);
              continue;
            }
            // Edge tile: the raw sums (alpha 1, beta 0: exact) then the same store arithmetic.
            kernel(depth, a_panel, b_panel, 1.0f, 0.0f, edge, kNR);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t q = 0; q < cols; ++q) {
                float& out = c[r * p.ldc + q];
                out = beta == 0.0f ? p.alpha * edge[r * kNR + q] : std::fma(p.alpha, edge[r * kNR + q], beta * out);
              }
          }
        }
      }
    }
  });
}

void packed_gemm(const Plan& p) {
  if (p.b_packed != nullptr) {  // both packed in advance: one super-block
    compute_super_block(p, 0, p.k_blocks, 0, p.n, p.a_packed, p.b_packed);
    return;
  }
  const int64_t m_pad = p.m_panels * kMR;
  const bool prepacked = p.a_packed != nullptr;
  // B's panels stay 64-byte aligned.
  const int64_t a_floats = prepacked ? 0 : round_up(p.super_kb * p.kc * m_pad, 16);
  float* buffer = packed_buffer.reserve(a_floats + p.super_kb * p.kc * p.super_n);
  float* b_packed = buffer + a_floats;
  for (int64_t kb0 = 0; kb0 < p.k_blocks; kb0 += p.super_kb) {
    const int64_t kbs = std::min(p.super_kb, p.k_blocks - kb0);
    const float* a_packed = prepacked ? p.a_packed + kb0 * p.kc * m_pad : buffer;
    for (int64_t n0 = 0; n0 < p.n; n0 += p.super_n) {
      const int64_t nw = std::min(p.super_n, p.n - n0);
      pack_super_block(p, kb0, kbs, n0 == 0 && !prepacked, n0, nw, buffer, b_packed);
      compute_super_block(p, kb0, kbs, n0, nw, a_packed, b_packed);
    }
  }
}

// C = beta * C (beta = 0: zeros, whatever C held).
void scale(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

#else  // Eigen fallback

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
using Map = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;

// One block: rows [r0, r1) and columns [c0, c1) of C.
void gemm_block(bool trans_a, bool trans_b, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t rows = r1 - r0, cols = c1 - c0;
  // op(A) rows [r0, r1): stored rows r0.. (no transpose) or stored columns r0.. (transpose).
  const float* a_block = trans_a ? a + r0 : a + r0 * lda;
  const float* b_block = trans_b ? b + c0 * ldb : b + c0;
  Map c_block(c + r0 * ldc + c0, rows, cols, Eigen::OuterStride<>(ldc));
  if (beta == 0.0f) {
    c_block.setZero();
  } else if (beta != 1.0f) {
    c_block *= beta;
  }
  if (k == 0) return;
  ConstMap a_stored(a_block, trans_a ? k : rows, trans_a ? rows : k, Eigen::OuterStride<>(lda));
  ConstMap b_stored(b_block, trans_b ? cols : k, trans_b ? k : cols, Eigen::OuterStride<>(ldb));
  if (trans_a && trans_b) {
    c_block.noalias() += alpha * (a_stored.transpose() * b_stored.transpose());
  } else if (trans_a) {
    c_block.noalias() += alpha * (a_stored.transpose() * b_stored);
  } else if (trans_b) {
    c_block.noalias() += alpha * (a_stored * b_stored.transpose());
  } else {
    c_block.noalias() += alpha * (a_stored * b_stored);
  }
}

// Block width: at most 8 blocks, each a multiple of 16 and at least 64 wide.
int64_t block_size(int64_t extent) { return std::max<int64_t>(64, ((extent + 7) / 8 + 15) / 16 * 16); }

#endif

}  // namespace

void AlignedFloats::Delete::operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }

float* AlignedFloats::reserve(int64_t size) {
  if (size > capacity_) {
    const std::size_t bytes = static_cast<std::size_t>(size) * sizeof(float);
    data_.reset(static_cast<float*>(::operator new[](bytes, std::align_val_t{64})));
    capacity_ = size;
  }
  return data_.get();
}

void PackedA::pack(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda) {
  trans_ = trans_a;
  m_ = m;
  k_ = k;
  source_ = a;
  ld_ = lda;
#if defined(FLEXNN_GEMM_PACKED)
  if (m <= 0 || k <= 0) return;
  const Plan p = make_plan(trans_a, false, m, 1, k, 1.0f, a, lda, nullptr, 0, 0.0f, nullptr, 0);
  kc_ = p.kc;
  // Every KC block's panels, block after block.
  pack_super_block(p, 0, p.k_blocks, true, 0, 0, data_.reserve(p.m_panels * kMR * k), nullptr);
#endif
}

int64_t PackedA::panel_rows() {
#if defined(FLEXNN_GEMM_PACKED)
  return kMR;
#else
  return 1;
#endif
}

void PackedA::reset(int64_t m, int64_t k) {
  trans_ = false;
  m_ = m;
  k_ = k;
  source_ = nullptr;
  ld_ = k;
  if (m <= 0 || k <= 0) return;
#if defined(FLEXNN_GEMM_PACKED)
  const Plan p = make_plan(false, false, m, 1, k, 1.0f, nullptr, 0, nullptr, 0, 0.0f, nullptr, 0);
  kc_ = p.kc;
  const int64_t m_pad = p.m_panels * kMR, used = m - (p.m_panels - 1) * kMR;
  float* data = data_.reserve(m_pad * k);
  if (used == kMR) return;
  // The last panel's rows past m are zeros, as pack() makes them.
  for (int64_t kb = 0; kb < p.k_blocks; ++kb) {
    float* panel = data + kb * p.kc * m_pad + (p.m_panels - 1) * kMR * p.block_depth(kb);
    for (int64_t q = 0; q < p.block_depth(kb); ++q) std::fill(panel + q * kMR + used, panel + (q + 1) * kMR, 0.0f);
  }
#else
  data_.reserve(m * k);
#endif
}

void PackedA::write(int64_t r0, int64_t rows, int64_t c0, int64_t cols, const float* src, int64_t ld) {
  float* data = data_.get();
#if defined(FLEXNN_GEMM_PACKED)
  // Column c sits in KC block kb at depth c - k0, kMR floats after column c - 1; its rows are runs
  // of up to kMR, one per panel, each panel kMR * depth floats after the one before.
  const int64_t m_pad = round_up(m_, kMR), c1 = c0 + cols;
  for (int64_t c = c0; c < c1;) {
    const int64_t k0 = c / kc_ * kc_, depth = std::min(kc_, k_ - k0), span = std::min(k0 + kc_, c1) - c;
    float* columns = data + k0 * m_pad + (c - k0) * kMR;
    const float* from = src + (c - c0) * ld;
    for (int64_t r = r0; r < r0 + rows;) {
      const int64_t at = r % kMR, run = std::min(kMR - at, r0 + rows - r);
      float* to = columns + (r - at) * depth + at;
      const float* run_from = from + (r - r0);
      if (run == kMR) {
        for (int64_t q = 0; q < span; ++q) std::copy_n(run_from + q * ld, kMR, to + q * kMR);
      } else {
        for (int64_t q = 0; q < span; ++q) std::copy_n(run_from + q * ld, run, to + q * kMR);
      }
      r += run;
    }
    c += span;
  }
#else
  for (int64_t q = 0; q < cols; ++q)
    for (int64_t r = 0; r < rows; ++r) data[(r0 + r) * k_ + c0 + q] = src[q * ld + r];
#endif
}

void PackedB::pack(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb) {
  trans_ = trans_b;
  k_ = k;
  n_ = n;
  source_ = b;
  ld_ = ldb;
#if defined(FLEXNN_GEMM_PACKED)
  if (k <= 0 || n <= 0) return;
  const Plan p = make_plan(false, trans_b, 1, n, k, 1.0f, nullptr, 0, b, ldb, 0.0f, nullptr, 0);
  // Every KC block's column panels, block after block.
  pack_super_block(p, 0, p.k_blocks, false, 0, n, nullptr, data_.reserve(k * round_up(n, kNR)));
#endif
}

void gemm(const PackedA& a, bool trans_b, int64_t n, float alpha, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
#if defined(FLEXNN_GEMM_PACKED)
  if (a.m_ <= 0 || n <= 0) return;
  if (a.k_ <= 0 || alpha == 0.0f) {
    scale(a.m_, n, beta, c, ldc);
    return;
  }
  packed_gemm(
      make_plan(a.trans_, trans_b, a.m_, n, a.k_, alpha, a.source_, a.ld_, b, ldb, beta, c, ldc, a.data_.get()));
#else
  gemm(a.trans_, trans_b, a.m_, n, a.k_, alpha, a.matrix(), a.ld_, b, ldb, beta, c, ldc);
#endif
}

void gemm(const PackedA& a, const PackedB& b, float alpha, float beta, float* c, int64_t ldc) {
  if (a.k_ != b.k_)
    throw Error("gemm: expected packed operands of one inner size, found A " + std::to_string(a.m_) + "x" +
                std::to_string(a.k_) + " and B " + std::to_string(b.k_) + "x" + std::to_string(b.n_));
#if defined(FLEXNN_GEMM_PACKED)
  if (a.m_ <= 0 || b.n_ <= 0) return;
  if (a.k_ <= 0 || alpha == 0.0f) {
    scale(a.m_, b.n_, beta, c, ldc);
    return;
  }
  packed_gemm(make_plan(a.trans_, b.trans_, a.m_, b.n_, a.k_, alpha, a.source_, a.ld_, b.source_, b.ld_, beta, c, ldc,
                        a.data_.get(), b.data_.get()));
#else
  gemm(a.trans_, b.trans_, a.m_, b.n_, a.k_, alpha, a.matrix(), a.ld_, b.source_, b.ld_, beta, c, ldc);
#endif
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
#if defined(FLEXNN_GEMM_PACKED)
  if (k <= 0 || alpha == 0.0f) {
    scale(m, n, beta, c, ldc);
    return;
  }
  packed_gemm(make_plan(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
#else
  const bool small = m * n * k < (int64_t{1} << 18);
  if (small) {
    gemm_block(trans_a, trans_b, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else if (n >= m) {
    parallel_for(0, n, block_size(n), [&](int64_t c0, int64_t c1) {
      gemm_block(trans_a, trans_b, 0, m, c0, c1, k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
  } else {
    parallel_for(0, m, block_size(m), [&](int64_t r0, int64_t r1) {
      gemm_block(trans_a, trans_b, r0, r1, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
  }
#endif
}

}  // namespace flexnn::cpu
