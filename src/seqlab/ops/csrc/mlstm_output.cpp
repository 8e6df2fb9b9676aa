// The mLSTM layer's output in one pass, forward and backward
// (seqlab.ops.compiled_layers.gated_norm):
// per-head layer norm of the cell's output, the learnable skip from the conv, the output gate.
// Memory traffic is the cost (a few operations per element): torch's layer norm, the products
// and SiLU each read and write every (B, T, I) tensor again; here one pass reads h, c, z once.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "fast_math.h"
#include "layers.h"

namespace {

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

// h, c (N, I) contiguous; z (N, I) with unit column stride; γ, s (I) contiguous; one dtype, CPU
void check_inputs(const torch::Tensor& h, const torch::Tensor& gamma, const torch::Tensor& skip,
                  const torch::Tensor& c, const torch::Tensor& z, int64_t heads) {
  TORCH_CHECK(h.dim() == 2 && heads > 0 && h.size(1) % heads == 0, "gated_norm: h must be (N, heads·V)");
  const auto I = h.size(1);
  for (const auto* t : {&h, &gamma, &skip, &c, &z}) {
    TORCH_CHECK(t->is_cpu() && t->scalar_type() == h.scalar_type(), "gated_norm: CPU tensors of one dtype");
  }
  TORCH_CHECK(h.is_contiguous() && c.is_contiguous() && c.sizes() == h.sizes(), "gated_norm: h, c (N, I) contiguous");
  TORCH_CHECK(z.dim() == 2 && z.size(0) == h.size(0) && z.size(1) == I && z.stride(1) == 1,
              "gated_norm: z must be (N, I) with unit column stride");
  TORCH_CHECK(gamma.numel() == I && skip.numel() == I && gamma.is_contiguous() && skip.is_contiguous(),
              "gated_norm: weight and skip must be contiguous (I,)");
}

}  // namespace

// The mLSTM layer's output, per row n (a time step) and head g (V features; I = G·V):
//   x̂ = (h − μ) r, r = (σ² + eps)^{−1/2}   (layer norm over the head's V features)
//   a = γ x̂ + s c,   out = a silu(z),   silu(z) = z σ(z)
// h, c, out (N, I) contiguous; z (N, I) with unit column stride and any row stride (a half of the
// up-projection's output); γ, s (I). Returns out and the per-(row, head) μ, r for the backward.
std::vector<torch::Tensor> gated_norm_forward(const torch::Tensor& h, const torch::Tensor& gamma,
                                              const torch::Tensor& skip, const torch::Tensor& c,
                                              const torch::Tensor& z, int64_t heads, double eps) {
  check_inputs(h, gamma, skip, c, z, heads);
  const int64_t N = h.size(0), I = h.size(1), V = I / heads, zs = z.stride(0);
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

namespace {

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

}  // namespace

// Its backward, per row and head (δa = δout silu(z), δx̂ = γ δa):
//   δz = δout a σ(z)(1 + z(1 − σ(z)))    δc = s δa    δγ = Σ_n δa x̂    δs = Σ_n δa c
//   δh = r (δx̂ − mean_v(δx̂) − x̂ mean_v(δx̂ x̂))
// -> {δh, δγ, δs, δc, δz}; δγ and δs summed per thread, then totalled.
std::vector<torch::Tensor> gated_norm_backward(const torch::Tensor& d_out, const torch::Tensor& h,
                                               const torch::Tensor& gamma, const torch::Tensor& skip,
                                               const torch::Tensor& c, const torch::Tensor& z,
                                               const torch::Tensor& mean, const torch::Tensor& rstd) {
  TORCH_CHECK(mean.dim() == 2 && mean.sizes() == rstd.sizes() && mean.size(0) == h.size(0),
              "gated_norm: mean and rstd must be (N, heads)");
  check_inputs(h, gamma, skip, c, z, mean.size(1));
  TORCH_CHECK(d_out.is_contiguous() && d_out.sizes() == h.sizes() && d_out.scalar_type() == h.scalar_type(),
              "gated_norm: the output gradient must be contiguous, shaped and typed like h");
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
