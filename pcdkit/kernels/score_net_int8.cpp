// The score network's inference forward as one pass over row tiles, int8 products on
// AVX512-VNNI (pcdkit issue 14).
//
// Every tile of rows (1,024 frame offsets by default) goes through the whole network while it sits
// in L2: the residual stream, the hidden layer and the u8 codes never travel to memory, which is
// what the unfused float32 path spends half its time on. Each hidden product codes its input
// (a ReLU's output, >= 0) per channel over 0..255 from the channel's maximum in the tile, folds
// those scales into W, codes W per output channel over -127..127 and multiplies u8 x s8 -> s32
// with VPDPBUSD; the weights' rounding, the same for every row of the tile, is corrected to first
// order at the tile's mean activation (bias correction). The 3-wide input and output layers stay
// in float32.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int H = 128;       // hidden channels
constexpr int V = H / 16;    // zmm vectors per row
constexpr int G = H / 4;     // groups of four input channels (one VPDPBUSD lane each)

// Scratch of one tile: everything a tile touches lives here (about 1.6 MB at 1,024 rows).
struct Scratch {
  std::vector<float> net, act;
  std::vector<uint8_t> codes;
  std::vector<int32_t> acc;
  std::vector<int8_t> packed;  // W's codes as [G][H][4]: 16 output channels x 4 inputs a zmm
  float a_scale[H], a_mean[H], w_scale[H], bias[H];
  explicit Scratch(int rows)
      : net(size_t(rows) * H), act(size_t(rows) * H), codes(size_t(rows) * H),
        acc(size_t(rows) * H), packed(G * H * 4) {}
};

// Per-channel maximum and sum of a (rows, H) >= 0 block -> scales (max / 255) and mean codes.
void channel_stats(const float* a, int rows, Scratch& s) {
  __m512 mx[V], sm[V];
  for (int v = 0; v < V; ++v) { mx[v] = _mm512_setzero_ps(); sm[v] = _mm512_setzero_ps(); }
  for (int r = 0; r < rows; ++r)
    for (int v = 0; v < V; ++v) {
      __m512 x = _mm512_loadu_ps(a + r * H + 16 * v);
      mx[v] = _mm512_max_ps(mx[v], x);
      sm[v] = _mm512_add_ps(sm[v], x);
    }
  const __m512 tiny = _mm512_set1_ps(1e-30f), inv255 = _mm512_set1_ps(1.0f / 255.0f);
  const __m512 inv_rows = _mm512_set1_ps(1.0f / float(rows));
  for (int v = 0; v < V; ++v) {
    __m512 scale = _mm512_mul_ps(_mm512_max_ps(mx[v], tiny), inv255);
    _mm512_storeu_ps(s.a_scale + 16 * v, scale);
    _mm512_storeu_ps(s.a_mean + 16 * v, _mm512_div_ps(_mm512_mul_ps(sm[v], inv_rows), scale));
  }
}

// u8 codes round(a / scale) of a (rows, H) >= 0 block (round half to even, as torch.round).
void code_rows(const float* a, int rows, Scratch& s) {
  __m512 inv[V];
  for (int v = 0; v < V; ++v)
    inv[v] = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_loadu_ps(s.a_scale + 16 * v));
  for (int r = 0; r < rows; ++r)
    for (int v = 0; v < V; ++v) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(a + r * H + 16 * v), inv[v]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(s.codes.data() + r * H + 16 * v),
                       _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512())));
    }
}

// W (H out, H in) with the tile's activation scales folded into its columns, coded per output
// channel and packed for VPDPBUSD; w_scale and bias (= b + first-order rounding correction).
void code_weights(const float* w, const float* b, Scratch& s) {
  for (int o = 0; o < H; ++o) {
    __m512 f[V];
    __m512 amax = _mm512_setzero_ps();
    for (int v = 0; v < V; ++v) {
      f[v] = _mm512_mul_ps(_mm512_loadu_ps(w + o * H + 16 * v),
                           _mm512_loadu_ps(s.a_scale + 16 * v));
      amax = _mm512_max_ps(amax, _mm512_abs_ps(f[v]));
    }
    float scale = std::max(_mm512_reduce_max_ps(amax), 1e-30f) / 127.0f;
    const __m512 sc = _mm512_set1_ps(scale);
    __m512 corr = _mm512_setzero_ps();
    alignas(64) int8_t row[H];
    for (int v = 0; v < V; ++v) {
      __m512i q = _mm512_cvtps_epi32(_mm512_div_ps(f[v], sc));
      __m512 err = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(q), sc, f[v]);
      corr = _mm512_fmadd_ps(_mm512_loadu_ps(s.a_mean + 16 * v), err, corr);
      _mm_store_si128(reinterpret_cast<__m128i*>(row + 16 * v), _mm512_cvtsepi32_epi8(q));
    }
    s.w_scale[o] = scale;
    s.bias[o] = b[o] + _mm512_reduce_add_ps(corr);
    const int32_t* quads = reinterpret_cast<const int32_t*>(row);
    int32_t* dst = reinterpret_cast<int32_t*>(s.packed.data());
    for (int g = 0; g < G; ++g) dst[g * H + o] = quads[g];
  }
}

// acc += u8 quads of a x s8 quads of w, summed per 32-bit lane (VPDPBUSD). GCC's intrinsic
// copies and spills every accumulator of a register-blocked loop (measured: 3x slower); the
// in-place instruction keeps them in registers.
inline void dpbusd(__m512i& acc, __m512i a, __m512i w) {
#if defined(__GNUC__)
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
#else
  acc = _mm512_dpbusd_epi32(acc, a, w);
#endif
}

// acc[r] = codes[r] @ packed (s32) for R rows at once; the sums stay in registers until stored.
template <int R>
inline void product_rows(const uint8_t* codes, const int8_t* packed, int32_t* acc_out) {
  __m512i acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int g = 0; g < G; ++g) {
    __m512i a[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
      a[i] = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(codes + i * H + 4 * g));
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      __m512i w = _mm512_loadu_si512(packed + (g * H + 16 * v) * 4);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) dpbusd(acc[i][v], a[i], w);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) _mm512_storeu_si512(acc_out + i * H + 16 * v, acc[i][v]);
}

// s.acc = s.codes @ s.packed for the tile's rows.
void product(Scratch& s, int rows) {
  int r = 0;
  for (; r + 3 <= rows; r += 3)
    product_rows<3>(s.codes.data() + r * H, s.packed.data(), s.acc.data() + r * H);
  for (; r < rows; ++r)
    product_rows<1>(s.codes.data() + r * H, s.packed.data(), s.acc.data() + r * H);
}

// Dequantised product of row r, vector v: acc * w_scale + bias.
inline __m512 dequant(const Scratch& s, int r, int v) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(s.acc.data() + r * H + 16 * v)),
                         _mm512_loadu_ps(s.w_scale + 16 * v), _mm512_loadu_ps(s.bias + 16 * v));
}

struct Net {
  const float* off;     // (N, 3)
  std::vector<const float*> cond;  // B + 1 of (M, H): feature terms of conv_p and of fc_c
  const float* wxyz;    // (B + 1, 3, H): offset columns of the same convs, transposed
  const float* aff;     // (B, 2, H): bn_0 as scale, shift
  const float* w0;      // (B, H, H): fc_0 with bn_1's scale folded into its rows
  const float* b0;      // (B, H)
  const float* w1;      // (B, H, H)
  const float* b1;      // (B, H)
  const float* aff_out; // (2, H): bn_out as scale, shift
  const float* w_out;   // (3, H)
  const float* b_out;   // (3)
  int64_t n, m, k, blocks;
};

// The shortcut term j of row `row`: cond[j, row's patch] + off[row] @ wxyz[j] (H floats).
struct Shortcut {
  __m512 t[V];
  Shortcut(const Net& p, int j, int64_t row) {
    const float* o = p.off + row * 3;
    const float* w = p.wxyz + (j * 3) * H;
    const float* c = p.cond[j] + (row / p.k) * H;
    const __m512 x = _mm512_set1_ps(o[0]), y = _mm512_set1_ps(o[1]), z = _mm512_set1_ps(o[2]);
    for (int v = 0; v < V; ++v) {
      __m512 a = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 16 * v), _mm512_loadu_ps(c + 16 * v));
      a = _mm512_fmadd_ps(y, _mm512_loadu_ps(w + H + 16 * v), a);
      t[v] = _mm512_fmadd_ps(z, _mm512_loadu_ps(w + 2 * H + 16 * v), a);
    }
  }
};

void run_tile(const Net& p, int64_t start, int rows, float* out, Scratch& s) {
  float* net = s.net.data();
  float* act = s.act.data();
  for (int r = 0; r < rows; ++r) {
    const Shortcut c(p, 0, start + r);
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(net + r * H + 16 * v, c.t[v]);
  }
  for (int j = 0; j < p.blocks; ++j) {
    const float* sc = p.aff + j * 2 * H;
    for (int r = 0; r < rows; ++r)
      for (int v = 0; v < V; ++v) {
        __m512 x = _mm512_loadu_ps(net + r * H + 16 * v);
        x = _mm512_fmadd_ps(x, _mm512_loadu_ps(sc + 16 * v), _mm512_loadu_ps(sc + H + 16 * v));
        _mm512_storeu_ps(act + r * H + 16 * v, _mm512_max_ps(x, _mm512_setzero_ps()));
      }
    channel_stats(act, rows, s);
    code_rows(act, rows, s);
    code_weights(p.w0 + j * H * H, p.b0 + j * H, s);
    product(s, rows);
    for (int r = 0; r < rows; ++r)
      for (int v = 0; v < V; ++v)
        _mm512_storeu_ps(act + r * H + 16 * v,
                         _mm512_max_ps(dequant(s, r, v), _mm512_setzero_ps()));
    channel_stats(act, rows, s);
    code_rows(act, rows, s);
    code_weights(p.w1 + j * H * H, p.b1 + j * H, s);
    product(s, rows);
    for (int r = 0; r < rows; ++r) {
      const Shortcut c(p, j + 1, start + r);
      for (int v = 0; v < V; ++v) {
        float* x = net + r * H + 16 * v;
        const __m512 y = _mm512_add_ps(dequant(s, r, v), c.t[v]);
        _mm512_storeu_ps(x, _mm512_add_ps(_mm512_loadu_ps(x), y));
      }
    }
  }
  for (int r = 0; r < rows; ++r) {
    __m512 d[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int v = 0; v < V; ++v) {
      __m512 x = _mm512_fmadd_ps(_mm512_loadu_ps(net + r * H + 16 * v),
                                 _mm512_loadu_ps(p.aff_out + 16 * v),
                                 _mm512_loadu_ps(p.aff_out + H + 16 * v));
      x = _mm512_max_ps(x, _mm512_setzero_ps());
      for (int o = 0; o < 3; ++o)
        d[o] = _mm512_fmadd_ps(x, _mm512_loadu_ps(p.w_out + o * H + 16 * v), d[o]);
    }
    for (int o = 0; o < 3; ++o) out[(start + r) * 3 + o] = p.b_out[o] + _mm512_reduce_add_ps(d[o]);
  }
}

void check(const torch::Tensor& t, const char* name, std::vector<int64_t> shape) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous(),
              name, " must be a contiguous float32 CPU tensor");
  TORCH_CHECK(t.sizes().vec() == shape, name, " has shape ", t.sizes(), ", expected ", shape);
}

}  // namespace

// Scores (N, 3) of frame offsets off (N, 3) in patches of k rows; see the header for the rest.
torch::Tensor score_net_int8(torch::Tensor off, int64_t k, std::vector<torch::Tensor> cond,
                             torch::Tensor wxyz, torch::Tensor aff, torch::Tensor w0,
                             torch::Tensor b0, torch::Tensor w1, torch::Tensor b1,
                             torch::Tensor aff_out, torch::Tensor w_out, torch::Tensor b_out,
                             int64_t tile) {
  const int64_t n = off.size(0), blocks = aff.size(0);
  TORCH_CHECK(k > 0 && n % k == 0, "rows ", n, " are not whole patches of ", k);
  TORCH_CHECK(tile >= 1, "tile must be >= 1");
  const int64_t m = n / k;
  check(off, "off", {n, 3});
  TORCH_CHECK(int64_t(cond.size()) == blocks + 1, "cond must hold ", blocks + 1, " tensors");
  std::vector<const float*> cond_ptr;
  for (const auto& c : cond) {
    check(c, "cond[j]", {m, H});
    cond_ptr.push_back(c.data_ptr<float>());
  }
  check(wxyz, "wxyz", {blocks + 1, 3, H});
  check(aff, "aff", {blocks, 2, H});
  check(w0, "w0", {blocks, H, H});
  check(b0, "b0", {blocks, H});
  check(w1, "w1", {blocks, H, H});
  check(b1, "b1", {blocks, H});
  check(aff_out, "aff_out", {2, H});
  check(w_out, "w_out", {3, H});
  check(b_out, "b_out", {3});
  Net p{off.data_ptr<float>(), cond_ptr, wxyz.data_ptr<float>(), aff.data_ptr<float>(),
        w0.data_ptr<float>(), b0.data_ptr<float>(), w1.data_ptr<float>(), b1.data_ptr<float>(),
        aff_out.data_ptr<float>(),
        w_out.data_ptr<float>(), b_out.data_ptr<float>(), n, m, k, blocks};
  auto out = torch::empty({n, 3}, off.options());
  float* o = out.data_ptr<float>();
  const int64_t tiles = (n + tile - 1) / tile;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    Scratch s(static_cast<int>(tile));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t start = t * tile;
      run_tile(p, start, int(std::min(tile, n - start)), o, s);
    }
  });
  return out;
}
