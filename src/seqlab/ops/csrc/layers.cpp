// seqlab compiled layers: the head-wise (block-diagonal) linear map and the causal depthwise
// convolution of the xLSTM blocks, forward and backward, in one pass over memory each.
//
// Shape legend: N rows · NB blocks · I / O in / out features per block · B batch · T time ·
// C channels · k kernel size.
//
// Both layers do a few multiply-adds per element they read: torch runs them as a batched matmul
// of 4x4 blocks (with two layout copies around it) and a grouped convolution over transposed
// copies, i.e. mostly memory traffic. Here each is a loop over rows (parallel over rows or batch)
// that reads its input once and writes its output once; weight gradients are summed per thread
// and reduced at the end. The math is that of seqlab.layers.HeadwiseLinear / CausalConv1d (see
// seqlab/ops/compiled_layers.py for the equations); tested against them in float64.
//
// It also gives the chunkwise mLSTM its batched matrix products through oneDNN (bmm_onednn):
// torch's float32 bmm on CPU goes to MKL, which on AMD CPUs reaches about half of oneDNN's speed.
// torch exports the oneDNN matmul it uses for bf16 (at::native::mkldnn_matmul) but ships no
// header for it, so it is declared here as a weak symbol: a torch without it (or with another
// signature, hence another mangled name) leaves the address null, and bmm_onednn uses at::bmm.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "fast_math.h"

namespace at::native {
// out = alpha · a b + beta · out (a, b 3-D, contiguous or transposed in the last two dimensions)
void mkldnn_matmul(const Tensor& a, const Tensor& b, const Tensor& out, float beta, float alpha)
    __attribute__((weak));
}  // namespace at::native

namespace {

// y[n, h, o] = Σ_i w[h, o, i] x[n, h, i]   (x (N, NB·I), w (NB, O, I) -> y (N, NB·O))
// FI, FO > 0 fix the block shape at compile time (fully unrolled, several times faster for 4x4).
template <typename scalar_t, int64_t FI = 0, int64_t FO = 0>
void headwise_rows(const scalar_t* x, const scalar_t* w, scalar_t* y, int64_t N, int64_t NB, int64_t I_run,
                   int64_t O_run) {
  const int64_t I = FI ? FI : I_run, O = FO ? FO : O_run;
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const scalar_t* xr = x + n * NB * I;
      scalar_t* yr = y + n * NB * O;
      for (int64_t h = 0; h < NB; ++h) {
        const scalar_t* xb = xr + h * I;
        const scalar_t* wb = w + h * O * I;
        for (int64_t o = 0; o < O; ++o) {
          scalar_t acc = 0;
          for (int64_t i = 0; i < I; ++i) acc += wb[o * I + i] * xb[i];
          yr[h * O + o] = acc;
        }
      }
    }
  });
}

// GCC 12's loop vectoriser turns the row loop below into loads that run past the last row (the
// rows are 4 floats read at a stride of NB·I: it reads into the gap after the last one, beyond the
// tensor's end — a segfault when that is an unmapped page). Only the straight-line 4x4 products
// are vectorised; the loop over rows stays a loop (a guard-page test covers it).
#if defined(__clang__)
#define SEQLAB_SCALAR_LOOP _Pragma("clang loop vectorize(disable)")
#define SEQLAB_NO_LOOP_VECTORIZE
#elif defined(__GNUC__)
#define SEQLAB_SCALAR_LOOP
#define SEQLAB_NO_LOOP_VECTORIZE __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define SEQLAB_SCALAR_LOOP
#define SEQLAB_NO_LOOP_VECTORIZE
#endif

// Σ_{n in [r0, r1)} dy[n, h, o] x[n, h, i] added to a[o, i] for one block h. With FI, FO > 0 the
// (O, I) sums live in registers over the whole tile of rows, so a is read and written once a tile.
template <typename scalar_t, int64_t FI, int64_t FO>
SEQLAB_NO_LOOP_VECTORIZE void block_tile_grad(const scalar_t* dy, const scalar_t* x, scalar_t* a, int64_t r0, int64_t r1, int64_t h,
                     int64_t NB, int64_t I_run, int64_t O_run) {
  const int64_t I = FI ? FI : I_run, O = FO ? FO : O_run;
  if constexpr (FI > 0 && FO > 0) {
    scalar_t s[FO * FI] = {};
    SEQLAB_SCALAR_LOOP
    for (int64_t n = r0; n < r1; ++n) {
      const scalar_t* xb = x + (n * NB + h) * I;
      const scalar_t* db = dy + (n * NB + h) * O;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) s[o * I + i] += db[o] * xb[i];
    }
    for (int64_t j = 0; j < O * I; ++j) a[j] += s[j];
  } else {
    for (int64_t n = r0; n < r1; ++n) {
      const scalar_t* xb = x + (n * NB + h) * I;
      const scalar_t* db = dy + (n * NB + h) * O;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) a[o * I + i] += db[o] * xb[i];
    }
  }
}

// dw[h, o, i] = Σ_n dy[n, h, o] x[n, h, i]: tiles of rows (which stay in cache while every block
// sums over them), per-thread partial sums, then their total
template <typename scalar_t, int64_t FI = 0, int64_t FO = 0>
void headwise_weight_grad(const scalar_t* dy, const scalar_t* x, scalar_t* dw, int64_t N, int64_t NB,
                          int64_t I_run, int64_t O_run) {
  const int64_t I = FI ? FI : I_run, O = FO ? FO : O_run;
  const int64_t W = NB * O * I;
  constexpr int64_t kTile = 64;
  const int threads = at::get_num_threads();
  std::vector<std::vector<scalar_t>> partial(threads, std::vector<scalar_t>(W, 0));
  at::parallel_for(0, N, 256, [&](int64_t begin, int64_t end) {
    scalar_t* acc = partial[at::get_thread_num()].data();
    for (int64_t r0 = begin; r0 < end; r0 += kTile) {
      const int64_t r1 = std::min(r0 + kTile, end);
      for (int64_t h = 0; h < NB; ++h)
        block_tile_grad<scalar_t, FI, FO>(dy, x, acc + h * O * I, r0, r1, h, NB, I, O);
    }
  });
  for (int64_t j = 0; j < W; ++j) {
    scalar_t total = 0;
    for (int t = 0; t < threads; ++t) total += partial[t][j];
    dw[j] = total;
  }
}

}  // namespace

torch::Tensor headwise_forward(const torch::Tensor& x, const torch::Tensor& w) {
  // x (N, NB·I) contiguous, w (NB, O, I) contiguous -> (N, NB·O)
  const int64_t N = x.size(0), NB = w.size(0), O = w.size(1), I = w.size(2);
  TORCH_CHECK(x.size(1) == NB * I, "headwise: x has ", x.size(1), " features, blocks need ", NB * I);
  auto y = torch::empty({N, NB * O}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "headwise_forward", [&] {
    auto args = std::make_tuple(x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N, NB, I, O);
    if (I == 4 && O == 4)
      std::apply(headwise_rows<scalar_t, 4, 4>, args);
    else
      std::apply(headwise_rows<scalar_t>, args);
  });
  return y;
}

torch::Tensor headwise_weight_backward(const torch::Tensor& dy, const torch::Tensor& x, int64_t NB) {
  // dy (N, NB·O), x (N, NB·I) contiguous -> dw (NB, O, I)
  const int64_t N = x.size(0), I = x.size(1) / NB, O = dy.size(1) / NB;
  auto dw = torch::empty({NB, O, I}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "headwise_weight_backward", [&] {
    auto args = std::make_tuple(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), dw.data_ptr<scalar_t>(), N, NB, I, O);
    if (I == 4 && O == 4)
      std::apply(headwise_weight_grad<scalar_t, 4, 4>, args);
    else
      std::apply(headwise_weight_grad<scalar_t>, args);
  });
  return dw;
}

// Causal depthwise convolution over [state; x] (state: the k − 1 inputs before x):
//   y[b, t, c] = bias[c] + Σ_j w[c, j] u[b, t + j, c],   u = [state; x] (B, k − 1 + T, C)
torch::Tensor causal_conv_forward(const torch::Tensor& x, const torch::Tensor& state, const torch::Tensor& w,
                                  const c10::optional<torch::Tensor>& bias) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), k = w.size(1), P = k - 1;
  auto y = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv_forward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* sp = state.data_ptr<scalar_t>();
    const scalar_t* bp = bias.has_value() ? bias->data_ptr<scalar_t>() : nullptr;
    // w as (k, C) so that the inner loop over channels is contiguous
    auto wt = w.t().contiguous();
    const scalar_t* wp = wt.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, B * T, 64, [&](int64_t begin, int64_t end) {
      for (int64_t bt = begin; bt < end; ++bt) {
        const int64_t b = bt / T, t = bt % T;
        scalar_t* yr = yp + bt * C;
        for (int64_t c = 0; c < C; ++c) yr[c] = bp ? bp[c] : scalar_t(0);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t s = t + j;  // position in u
          const scalar_t* ur = s < P ? sp + (b * P + s) * C : xp + (b * T + s - P) * C;
          const scalar_t* wr = wp + j * C;
          for (int64_t c = 0; c < C; ++c) yr[c] += wr[c] * ur[c];
        }
      }
    });
  });
  return y;
}

// δu[b, s, c] = Σ_j w[c, j] δy[b, s − j, c] (0 ≤ s − j < T), split into δstate (s < k − 1) and
// δx; δw[c, j] = Σ_{b,t} δy[b, t, c] u[b, t + j, c]; δbias[c] = Σ_{b,t} δy[b, t, c].
std::vector<torch::Tensor> causal_conv_backward(const torch::Tensor& dy, const torch::Tensor& x,
                                                const torch::Tensor& state, const torch::Tensor& w, bool has_bias) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), k = w.size(1), P = k - 1;
  auto dx = torch::empty_like(x);
  auto dstate = torch::empty_like(state);
  auto dw = torch::empty({C, k}, x.options());
  auto dbias = torch::empty({C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv_backward", [&] {
    const scalar_t* gp = dy.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* sp = state.data_ptr<scalar_t>();
    auto wt = w.t().contiguous();  // (k, C)
    const scalar_t* wp = wt.data_ptr<scalar_t>();
    scalar_t* dxp = dx.data_ptr<scalar_t>();
    scalar_t* dsp = dstate.data_ptr<scalar_t>();
    const int threads = at::get_num_threads();
    std::vector<std::vector<scalar_t>> part_w(threads, std::vector<scalar_t>(k * C, 0));
    std::vector<std::vector<scalar_t>> part_b(threads, std::vector<scalar_t>(C, 0));
    const int64_t S = P + T;  // positions of u per row
    at::parallel_for(0, B * S, 64, [&](int64_t begin, int64_t end) {
      scalar_t* aw = part_w[at::get_thread_num()].data();
      scalar_t* ab = part_b[at::get_thread_num()].data();
      for (int64_t bs = begin; bs < end; ++bs) {
        const int64_t b = bs / S, s = bs % S;
        scalar_t* out = s < P ? dsp + (b * P + s) * C : dxp + (b * T + s - P) * C;
        const scalar_t* ur = s < P ? sp + (b * P + s) * C : xp + (b * T + s - P) * C;
        for (int64_t c = 0; c < C; ++c) out[c] = 0;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t t = s - j;  // the output that read u[s] through tap j
          if (t < 0 || t >= T) continue;
          const scalar_t* gr = gp + (b * T + t) * C;
          const scalar_t* wr = wp + j * C;
          scalar_t* awr = aw + j * C;
          for (int64_t c = 0; c < C; ++c) {
            out[c] += wr[c] * gr[c];
            awr[c] += gr[c] * ur[c];
          }
        }
        if (s >= P) {
          const scalar_t* gr = gp + (b * T + s - P) * C;
          for (int64_t c = 0; c < C; ++c) ab[c] += gr[c];
        }
      }
    });
    scalar_t* dwp = dw.data_ptr<scalar_t>();
    scalar_t* dbp = dbias.data_ptr<scalar_t>();
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t j = 0; j < k; ++j) {
        scalar_t total = 0;
        for (int t = 0; t < threads; ++t) total += part_w[t][j * C + c];
        dwp[c * k + j] = total;
      }
      scalar_t total = 0;
      for (int t = 0; t < threads; ++t) total += part_b[t][c];
      dbp[c] = total;
    }
  });
  if (!has_bias) return {dx, dstate, dw};
  return {dx, dstate, dw, dbias};
}

// One row and head of the forward below (restrict: every loop may be vectorised).
template <typename scalar_t>
void gated_norm_row(const scalar_t* __restrict__ h, const scalar_t* __restrict__ c, const scalar_t* __restrict__ z,
                    const scalar_t* __restrict__ gamma, const scalar_t* __restrict__ skip, int64_t V, scalar_t eps,
                    scalar_t* __restrict__ out, scalar_t* __restrict__ mean, scalar_t* __restrict__ rstd) {
  scalar_t sum = 0, sq = 0;
  for (int64_t v = 0; v < V; ++v) sum += h[v];
  const scalar_t mu = sum / V;
  for (int64_t v = 0; v < V; ++v) sq += (h[v] - mu) * (h[v] - mu);
  const scalar_t r = scalar_t(1) / std::sqrt(sq / V + eps);
  for (int64_t v = 0; v < V; ++v) out[v] = ((h[v] - mu) * r * gamma[v] + skip[v] * c[v]) * z[v] * seqlab::sigmoid(z[v]);
  *mean = mu;
  *rstd = r;
}

// The mLSTM layer's output, per row n (a time step) and head g (V features; I = G·V):
//   x̂ = (h − μ) r, r = (σ² + eps)^{−1/2}   (layer norm over the head's V features)
//   a = γ x̂ + s c,   out = a silu(z),   silu(z) = z σ(z)
// h, c, out (N, I) contiguous; z (N, I) with unit column stride and any row stride (a half of the
// up-projection's output); γ, s (I). Returns out and the per-(row, head) μ, r for the backward.
std::vector<torch::Tensor> gated_norm_forward(const torch::Tensor& h, const torch::Tensor& gamma,
                                              const torch::Tensor& skip, const torch::Tensor& c,
                                              const torch::Tensor& z, int64_t heads, double eps) {
  const int64_t N = h.size(0), I = h.size(1), V = I / heads, zs = z.stride(0);
  TORCH_CHECK(I == heads * V && z.stride(1) == 1, "gated_norm: bad shapes or strides");
  auto out = torch::empty_like(h);
  auto mean = torch::empty({N, heads}, h.options());
  auto rstd = torch::empty({N, heads}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gated_norm_forward", [&] {
    const scalar_t *hp = h.data_ptr<scalar_t>(), *gp = gamma.data_ptr<scalar_t>();
    const scalar_t *sp = skip.data_ptr<scalar_t>(), *cp = c.data_ptr<scalar_t>(), *zp = z.data_ptr<scalar_t>();
    scalar_t *op = out.data_ptr<scalar_t>(), *mp = mean.data_ptr<scalar_t>(), *rp = rstd.data_ptr<scalar_t>();
    at::parallel_for(0, N * heads, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / heads, off = (row % heads) * V;
        gated_norm_row(hp + n * I + off, cp + n * I + off, zp + n * zs + off, gp + off, sp + off, V, scalar_t(eps),
                       op + n * I + off, mp + row, rp + row);
      }
    });
  });
  return {out, mean, rstd};
}

// One row and head of the backward below; restrict: the compiler may vectorise every loop.
template <typename scalar_t>
void gated_norm_row_backward(const scalar_t* __restrict__ go, const scalar_t* __restrict__ h,
                             const scalar_t* __restrict__ c, const scalar_t* __restrict__ z,
                             const scalar_t* __restrict__ gamma, const scalar_t* __restrict__ skip, scalar_t mu,
                             scalar_t r, int64_t V, scalar_t* __restrict__ dh, scalar_t* __restrict__ dc,
                             scalar_t* __restrict__ dz, scalar_t* __restrict__ acc_g, scalar_t* __restrict__ acc_s,
                             scalar_t* __restrict__ dxhat) {
  scalar_t sum1 = 0, sum2 = 0;
  for (int64_t v = 0; v < V; ++v) {
    const scalar_t x = (h[v] - mu) * r, sig = seqlab::sigmoid(z[v]);
    const scalar_t a = gamma[v] * x + skip[v] * c[v];
    const scalar_t da = go[v] * z[v] * sig;
    dz[v] = go[v] * a * sig * (1 + z[v] * (1 - sig));
    dc[v] = skip[v] * da;
    acc_g[v] += da * x;
    acc_s[v] += da * c[v];
    dxhat[v] = gamma[v] * da;
    sum1 += dxhat[v];
    sum2 += dxhat[v] * x;
  }
  sum1 /= V;
  sum2 /= V;
  for (int64_t v = 0; v < V; ++v) dh[v] = r * (dxhat[v] - sum1 - (h[v] - mu) * r * sum2);
}

// Its backward, per row and head (δa = δout silu(z), δx̂ = γ δa):
//   δz = δout a σ(z)(1 + z(1 − σ(z)))    δc = s δa    δγ = Σ_n δa x̂    δs = Σ_n δa c
//   δh = r (δx̂ − mean_v(δx̂) − x̂ mean_v(δx̂ x̂))
// -> {δh, δγ, δs, δc, δz}; δγ and δs summed per thread, then totalled.
std::vector<torch::Tensor> gated_norm_backward(const torch::Tensor& d_out, const torch::Tensor& h,
                                               const torch::Tensor& gamma, const torch::Tensor& skip,
                                               const torch::Tensor& c, const torch::Tensor& z,
                                               const torch::Tensor& mean, const torch::Tensor& rstd) {
  const int64_t N = h.size(0), I = h.size(1), heads = mean.size(1), V = I / heads, zs = z.stride(0);
  auto dh = torch::empty_like(h), dc = torch::empty_like(h), dz = torch::empty_like(h);
  auto dgamma = torch::empty_like(gamma), dskip = torch::empty_like(skip);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gated_norm_backward", [&] {
    const scalar_t *gop = d_out.data_ptr<scalar_t>(), *hp = h.data_ptr<scalar_t>();
    const scalar_t *gp = gamma.data_ptr<scalar_t>(), *sp = skip.data_ptr<scalar_t>();
    const scalar_t *cp = c.data_ptr<scalar_t>(), *zp = z.data_ptr<scalar_t>();
    const scalar_t *mp = mean.data_ptr<scalar_t>(), *rp = rstd.data_ptr<scalar_t>();
    scalar_t *dhp = dh.data_ptr<scalar_t>(), *dcp = dc.data_ptr<scalar_t>(), *dzp = dz.data_ptr<scalar_t>();
    const int threads = at::get_num_threads();
    std::vector<std::vector<scalar_t>> part_g(threads, std::vector<scalar_t>(I, 0));
    std::vector<std::vector<scalar_t>> part_s(threads, std::vector<scalar_t>(I, 0));
    at::parallel_for(0, N * heads, 16, [&](int64_t begin, int64_t end) {
      scalar_t* ag = part_g[at::get_thread_num()].data();
      scalar_t* as = part_s[at::get_thread_num()].data();
      std::vector<scalar_t> dxhat(V);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / heads, off = (row % heads) * V, at = n * I + off;
        gated_norm_row_backward(gop + at, hp + at, cp + at, zp + n * zs + off, gp + off, sp + off, mp[row], rp[row],
                                V, dhp + at, dcp + at, dzp + at, ag + off, as + off, dxhat.data());
      }
    });
    scalar_t *dgp = dgamma.data_ptr<scalar_t>(), *dsp = dskip.data_ptr<scalar_t>();
    for (int64_t j = 0; j < I; ++j) {
      scalar_t tg = 0, ts = 0;
      for (int t = 0; t < threads; ++t) {
        tg += part_g[t][j];
        ts += part_s[t][j];
      }
      dgp[j] = tg;
      dsp[j] = ts;
    }
  });
  return {dh, dgamma, dskip, dc, dz};
}

// whether bmm_onednn runs oneDNN (torch exports its matmul, has oneDNN, and it is enabled)
bool has_onednn_bmm() {
  return at::native::mkldnn_matmul != nullptr && at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
}

// out = a b (+ out when accumulate): a (n, i, j), b (n, j, k), out (n, i, k) contiguous float32
void bmm_onednn(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out, bool accumulate) {
  TORCH_CHECK(out.is_contiguous(), "bmm_onednn: out must be contiguous");
  const bool f32 = a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && out.scalar_type() == at::kFloat;
  if (has_onednn_bmm() && f32 && a.is_cpu()) {
    at::native::mkldnn_matmul(a, b, out, accumulate ? 1.0f : 0.0f, 1.0f);
  } else if (accumulate) {
    out.baddbmm_(a, b);
  } else {
    at::bmm_out(const_cast<torch::Tensor&>(out), a, b);
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gated_norm_forward", &gated_norm_forward, "the mLSTM output (LN_heads(h) γ + s c) silu(z)");
  m.def("gated_norm_backward", &gated_norm_backward, "its gradients (h, γ, s, c, z)");
  m.def("has_onednn_bmm", &has_onednn_bmm, "whether bmm_onednn runs in oneDNN");
  m.def("bmm_onednn", &bmm_onednn, "out = a b (+ out) through oneDNN's matmul (float32)");
  m.def("headwise_forward", &headwise_forward, "block-diagonal linear map y = blockdiag(w) x per row");
  m.def("headwise_weight_backward", &headwise_weight_backward, "its weight gradient");
  m.def("causal_conv_forward", &causal_conv_forward, "causal depthwise convolution over [state; x]");
  m.def("causal_conv_backward", &causal_conv_backward, "its gradients (x, state, weight, bias)");
}
