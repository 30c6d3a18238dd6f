// Exact k-nearest neighbours of small point sets by brute force in AVX-512 (pcdkit issue 14).
//
// Denoising searches, at every step, the 4 nearest current points of each of a patch's 1,000
// points, and each feature block the 17 nearest of 1,000 in a 24-dimensional feature space.
// At these sizes building a k-d tree per patch and step costs more than comparing all pairs:
// here the reference set is laid out by coordinate (D rows of N), 16 squared distances are
// formed per step as sums of squared differences (no |a|^2 - 2ab + |b|^2 cancellation), and a
// point enters the query's sorted top-k only when it beats the current k-th, which after the
// first few hundred points is rare.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace {

constexpr int kMaxK = 64;

// Top-k of one query q (D) against rt (D rows of n_pad, padded with far points): indices out.
// DIM > 0 fixes D at compile time (3-D points: the coordinates' broadcasts stay in registers).
template <int DIM>
void query_one(const float* q, const float* rt, int64_t d_dim, int64_t n_pad, int64_t k,
               int64_t* out) {
  if (DIM > 0) d_dim = DIM;
  float best_d[kMaxK];
  int64_t best_i[kMaxK];
  for (int64_t p = 0; p < k; ++p) {
    best_d[p] = std::numeric_limits<float>::infinity();
    best_i[p] = 0;
  }
  float worst = std::numeric_limits<float>::infinity();
  alignas(64) float dist[16];
  for (int64_t c = 0; c < n_pad; c += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t d = 0; d < d_dim; ++d) {
      __m512 diff = _mm512_sub_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(rt + d * n_pad + c));
      acc = _mm512_fmadd_ps(diff, diff, acc);
    }
    __mmask16 mask = _mm512_cmp_ps_mask(acc, _mm512_set1_ps(worst), _CMP_LT_OQ);
    if (!mask) continue;
    _mm512_store_ps(dist, acc);
    while (mask) {
      const int j = __builtin_ctz(mask);
      mask &= mask - 1;
      const float dj = dist[j];
      if (!(dj < worst)) continue;  // the k-th moved down since the mask was taken
      int64_t p = k - 1;           // strict <: of equal distances the earlier index ranks first
      while (p > 0 && dj < best_d[p - 1]) {
        best_d[p] = best_d[p - 1];
        best_i[p] = best_i[p - 1];
        --p;
      }
      best_d[p] = dj;
      best_i[p] = c + j;
      worst = best_d[k - 1];
    }
  }
  for (int64_t p = 0; p < k; ++p) out[p] = best_i[p];
}

}  // namespace

// Indices (B, M, k) of the k nearest rows of r (B, N, D) for each row of q (B, M, D), nearest
// first, by squared Euclidean distance in float32.
torch::Tensor knn_brute(torch::Tensor q, torch::Tensor r, int64_t k) {
  TORCH_CHECK(q.device().is_cpu() && r.device().is_cpu(), "knn_brute runs on the CPU");
  TORCH_CHECK(q.scalar_type() == torch::kFloat32 && r.scalar_type() == torch::kFloat32,
              "knn_brute takes float32 points");
  TORCH_CHECK(q.dim() == 3 && r.dim() == 3 && q.size(0) == r.size(0) && q.size(2) == r.size(2),
              "knn_brute: shapes ", q.sizes(), " and ", r.sizes(), " are not (B, M, D), (B, N, D)");
  const int64_t b_dim = q.size(0), m = q.size(1), n = r.size(1), d_dim = q.size(2);
  TORCH_CHECK(k >= 1 && k <= n && k <= kMaxK, "knn_brute: k=", k, " must be in [1, min(", n, ", ",
              kMaxK, ")]");
  const int64_t n_pad = (n + 15) / 16 * 16;
  // padding points sit 1e15 away in every coordinate: never nearer than a real point
  auto rt = torch::full({b_dim, d_dim, n_pad}, 1e15f, r.options());
  rt.narrow(2, 0, n).copy_(r.transpose(1, 2));
  auto qc = q.contiguous();
  auto out = torch::empty({b_dim, m, k}, q.options().dtype(torch::kInt64));
  const float* qp = qc.data_ptr<float>();
  const float* rp = rt.data_ptr<float>();
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, b_dim * m, 64, [&](int64_t s, int64_t e) {
    const auto one = d_dim == 3 ? &query_one<3> : &query_one<0>;
    for (int64_t i = s; i < e; ++i)
      one(qp + i * d_dim, rp + (i / m) * d_dim * n_pad, d_dim, n_pad, k, op + i * k);
  });
  return out;
}
