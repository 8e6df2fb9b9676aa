// seqlab compiled layers: the head-wise (block-diagonal) linear map and the causal depthwise
// convolution of the xLSTM blocks, forward and backward, in one pass over memory each; and the
// Python module of the extension (with mlstm_output.cpp and onednn_bmm.cpp, see layers.h).
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
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "layers.h"

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
