// seqlab backend="compiled": the whole LSTM time loop, forward and BPTT, in C++.
//
// Shape legend: T time · B batch · H hidden · G = 4H gate blocks (i, f, g, o).
//
// Per step: one GEMM for the recurrent product r = (h ⊙ drop) W_hh^T, then ONE pass over each
// row of the (B, G) buffer that adds the hoisted input projection, applies the optional layer
// norm on r, the gate nonlinearities, the cell update, the optional layer norm on c and the
// hidden state, and saves what BPTT needs. Backward mirrors it: one pass per row for δz (with
// the layer-norm backward), one GEMM for δh_{t-1} = δr W_hh; ∂L/∂W_hh is one GEMM after the loop.
// With ln_ih the row pass also applies the input layer norm γ_ih ⊙ LN(gx) + b (and its backward).
// float32 GEMMs go through oneDNN; the big (T, B, ·) buffers are reused between calls (pool).
// The math is that of seqlab.ops.rnn.lstm_cell (see compiled_lstm.py for the equations).
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "../../csrc/fast_math.h"

namespace {

using at::Tensor;

using seqlab::sigmoid;
using seqlab::tanh_;

// ---- GEMMs: oneDNN's linear (x ↦ x wᵀ, w packed or plain with any strides) for float32 ----
Tensor onednn_linear(const Tensor& x, const Tensor& w) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
  std::vector<c10::IValue> stack{x, w, c10::IValue(), std::string("none"),
                                 c10::List<std::optional<at::Scalar>>(), std::string("")};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// per step: oneDNN with the packed weight Python passed, else mm into `out`
Tensor linear_step(const Tensor& x, const Tensor& w_t, const Tensor& packed, Tensor& out) {
  if (packed.defined()) return onednn_linear(x, packed);
  return at::mm_out(out, x, w_t);
}

// ---- buffer pool: the big (T, B, ·) buffers are reused between calls instead of being mapped
// (and page-faulted in) afresh each time. A pooled buffer is handed out as a view; it is free
// again once nothing else holds its storage (the autograd graph, the caller), so reuse never
// aliases a live tensor. Buffers under 1 MiB are not pooled; the pool keeps at most
// $SEQLAB_LSTM_POOL_MB (default 1024) MiB and release_buffers() empties it.
struct Pool {
  std::mutex mu;
  std::vector<Tensor> bufs;  // flat, contiguous
  int64_t bytes = 0;
};
Pool& pool() {
  static Pool p;
  return p;
}
int64_t pool_cap() {
  static const int64_t cap = [] {
    const char* v = std::getenv("SEQLAB_LSTM_POOL_MB");
    return (v ? std::atoll(v) : 1024LL) << 20;
  }();
  return cap;
}
inline bool is_free(const Tensor& t) { return t.storage().use_count() == 1; }

Tensor pooled_empty(at::IntArrayRef shape, const at::TensorOptions& opt) {
  const int64_t n = c10::multiply_integers(shape);
  const int64_t nbytes = n * static_cast<int64_t>(c10::elementSize(c10::typeMetaToScalarType(opt.dtype())));
  if (nbytes < (1 << 20)) return at::empty(shape, opt);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  for (const Tensor& t : p.bufs)
    if (t.numel() == n && t.dtype() == opt.dtype() && is_free(t)) return t.view(shape);
  if (p.bytes + nbytes > pool_cap()) {  // evict free buffers of other sizes
    auto end = std::remove_if(p.bufs.begin(), p.bufs.end(), [&](const Tensor& t) {
      if (!is_free(t)) return false;
      p.bytes -= t.nbytes();
      return true;
    });
    p.bufs.erase(end, p.bufs.end());
  }
  Tensor t = at::empty({n}, opt);
  if (p.bytes + nbytes <= pool_cap()) {
    p.bufs.push_back(t);
    p.bytes += nbytes;
  }
  return t.view(shape);
}

int64_t release_buffers() {  // drops the pool's references; returns the bytes it held
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  const int64_t b = p.bytes;
  p.bufs.clear();
  p.bytes = 0;
  return b;
}

template <typename T>
struct Saved {  // forward buffers, all contiguous; per-step ones indexed by time t
  int64_t T_, B, H;
  const T* gx;        // (T, B, G) hoisted input projection (+ biases)
  T *hs, *cs;         // (T+1, B, H) state *before* processing step k (processing order)
  T *gates, *tc;      // (T, B, G) activated gates; (T, B, H) tanh of the (normed) cell
  T *xh, *rh;         // layer norm on r: (T, B, G) normalised r, (T, B) 1/σ    (or null)
  T *xc, *rc;         // layer norm on c: (T, B, H), (T, B)                     (or null)
  const T *ln_hh, *ln_cw, *ln_cb;
  const bool* mask;   // (B, T) or null
  T* out;             // (B, T, H)
  double eps;
  T *xi = nullptr, *ri = nullptr;  // layer norm on the input part (gx raw): (T, B, G), (T, B)
  const T *ln_ih = nullptr, *bias = nullptr;  // its gain (G,) and the bias added after it (G,)
};

template <typename T>
inline void normalise(const T* v, int64_t n, double eps, T* xhat, T* rstd_out) {
  T mean = 0, var = 0;
  for (int64_t j = 0; j < n; ++j) mean += v[j];
  mean /= T(n);
  for (int64_t j = 0; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
  const T rstd = T(1) / std::sqrt(var / T(n) + T(eps));
  for (int64_t j = 0; j < n; ++j) xhat[j] = (v[j] - mean) * rstd;
  *rstd_out = rstd;
}

// One row b of step k (time t): z = gx + [LN](r); gates; c; h. `r` is the (B, G) GEMM result.
template <typename T>
void forward_row(const Saved<T>& s, const T* r, int64_t k, int64_t t, int64_t b) {
  const int64_t B = s.B, H = s.H, G = 4 * H, bt = t * B + b;
  const T *h0 = s.hs + (k * B + b) * H, *c0 = s.cs + (k * B + b) * H;
  T *h1 = s.hs + ((k + 1) * B + b) * H, *c1 = s.cs + ((k + 1) * B + b) * H;
  T* out = s.out + (b * s.T_ + t) * H;
  if (s.mask && !s.mask[b * s.T_ + t]) {  // padded: keep the state, output 0
    std::memcpy(h1, h0, H * sizeof(T));
    std::memcpy(c1, c0, H * sizeof(T));
    std::memset(out, 0, H * sizeof(T));
    if (s.xh) std::memset(s.xh + bt * G, 0, G * sizeof(T));  // read by the gain gradient
    return;
  }
  T* z = s.gates + bt * G;
  const T* gx = s.gx + bt * G;
  const T* rb = r + b * G;
  if (s.xi) {  // 0. the input part γ_ih ⊙ LN(x W_ih^T) (+ b), kept in z until step 1 adds r
    T* xi = s.xi + bt * G;
    normalise(gx, G, s.eps, xi, s.ri + bt);
    if (s.bias) {
      for (int64_t j = 0; j < G; ++j) z[j] = s.ln_ih[j] * xi[j] + s.bias[j];
    } else {
      for (int64_t j = 0; j < G; ++j) z[j] = s.ln_ih[j] * xi[j];
    }
    gx = z;  // read and written at the same index below
  }
  if (s.xh) {  // 1. z = gx + LN(h W_hh^T) ⊙ γ_hh
    T* xh = s.xh + bt * G;
    normalise(rb, G, s.eps, xh, s.rh + bt);
    for (int64_t j = 0; j < G; ++j) z[j] = gx[j] + s.ln_hh[j] * xh[j];
  } else {
    for (int64_t j = 0; j < G; ++j) z[j] = gx[j] + rb[j];
  }
  // 2. gates i, f (σ), g (tanh), o (σ)
  for (int64_t j = 0; j < 2 * H; ++j) z[j] = sigmoid(z[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) z[j] = tanh_(z[j]);
  for (int64_t j = 3 * H; j < G; ++j) z[j] = sigmoid(z[j]);
  const T *i = z, *f = z + H, *g = z + 2 * H, *o = z + 3 * H;
  // 3. c_t = f ⊙ c_{t-1} + i ⊙ g
  for (int64_t j = 0; j < H; ++j) c1[j] = f[j] * c0[j] + i[j] * g[j];
  // 4. h_t = o ⊙ tanh([LN](c_t))
  T* tc = s.tc + bt * H;
  if (s.xc) {
    T* xc = s.xc + bt * H;
    normalise(c1, H, s.eps, xc, s.rc + bt);
    for (int64_t j = 0; j < H; ++j) tc[j] = tanh_(xc[j] * s.ln_cw[j] + s.ln_cb[j]);
  } else {
    for (int64_t j = 0; j < H; ++j) tc[j] = tanh_(c1[j]);
  }
  for (int64_t j = 0; j < H; ++j) out[j] = h1[j] = o[j] * tc[j];
}

int64_t grain(int64_t G) { return std::max<int64_t>(1, 16384 / G); }

// Returns {out (B,T,H), hs (T+1,B,H), cs (T+1,B,H), gates, tc, xh, rh, xc, rc, xi, ri}.
// With ln_ih, gx is the raw x W_ih^T and the loop adds γ_ih ⊙ LN(gx) (+ bias) itself.
std::vector<Tensor> lstm_forward(const Tensor& gx, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                 const std::optional<Tensor>& packed, const std::optional<Tensor>& mask,
                                 const std::optional<Tensor>& drop, const std::optional<Tensor>& ln_hh,
                                 const std::optional<Tensor>& ln_cw, const std::optional<Tensor>& ln_cb,
                                 const std::optional<Tensor>& ln_ih, const std::optional<Tensor>& bias,
                                 bool reverse, double eps) {
  TORCH_CHECK(gx.dim() == 3 && gx.is_contiguous() && h0.is_contiguous() && c0.is_contiguous(),
              "lstm_forward: expected contiguous gx (T, B, 4H), h0, c0 (B, H)");
  const int64_t T_ = gx.size(0), B = gx.size(1), G = gx.size(2), H = G / 4;
  auto opt = gx.options();
  Tensor out = pooled_empty({B, T_, H}, opt), hs = pooled_empty({T_ + 1, B, H}, opt);
  Tensor cs = pooled_empty({T_ + 1, B, H}, opt), gates = pooled_empty({T_, B, G}, opt);
  Tensor tc = pooled_empty({T_, B, H}, opt), r = at::empty({B, G}, opt), h_in = at::empty({B, H}, opt);
  const bool ln = ln_hh.has_value();
  Tensor xh = ln ? pooled_empty({T_, B, G}, opt) : Tensor(), rh = ln ? at::empty({T_, B}, opt) : Tensor();
  Tensor xc = ln ? pooled_empty({T_, B, H}, opt) : Tensor(), rc = ln ? at::empty({T_, B}, opt) : Tensor();
  const bool lni = ln_ih.has_value();
  TORCH_CHECK(!lni || ln, "lstm_forward: ln_ih needs the other layer norms");
  TORCH_CHECK(!bias || lni, "lstm_forward: bias only with ln_ih (else it is folded into gx)");
  Tensor xi = lni ? pooled_empty({T_, B, G}, opt) : Tensor(), ri = lni ? at::empty({T_, B}, opt) : Tensor();
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  const Tensor w_t = w_hh.t(), pk = packed.value_or(Tensor());
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "lstm_forward", [&] {
    Saved<scalar_t> s{T_, B, H, gx.data_ptr<scalar_t>(), hs.data_ptr<scalar_t>(), cs.data_ptr<scalar_t>(),
                      gates.data_ptr<scalar_t>(), tc.data_ptr<scalar_t>(),
                      ln ? xh.data_ptr<scalar_t>() : nullptr, ln ? rh.data_ptr<scalar_t>() : nullptr,
                      ln ? xc.data_ptr<scalar_t>() : nullptr, ln ? rc.data_ptr<scalar_t>() : nullptr,
                      ln ? ln_hh->data_ptr<scalar_t>() : nullptr, ln ? ln_cw->data_ptr<scalar_t>() : nullptr,
                      ln ? ln_cb->data_ptr<scalar_t>() : nullptr,
                      mask ? mask->data_ptr<bool>() : nullptr, out.data_ptr<scalar_t>(), eps};
    if (lni) {
      s.xi = xi.data_ptr<scalar_t>();
      s.ri = ri.data_ptr<scalar_t>();
      s.ln_ih = ln_ih->data_ptr<scalar_t>();
      s.bias = bias ? bias->data_ptr<scalar_t>() : nullptr;
    }
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? T_ - 1 - k : k;
      Tensor x = hs[k];
      if (drop) x = at::mul_out(h_in, x, *drop);
      const Tensor res = linear_step(x, w_t, pk, r);  // (B, G) = (h ⊙ drop) W_hh^T
      const scalar_t* rp = res.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain(G), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) forward_row(s, rp, k, t, b);
      });
    }
  });
  return {out, hs, cs, gates, tc, xh, rh, xc, rc, xi, ri};
}

template <typename T>
struct Grads {
  const T* dout;  // (B, T, H) or null
  T *dh, *dc;     // (B, H) running δh_t, δc_t
  T *dgx, *dr;    // (T, B, G) δz (= ∂L/∂gx) and δr (= δz without layer norm)
  T *acc_w, *acc_b;  // (B, H) running sums for the c layer norm's gain and bias
  T* acc_hh;         // (B, G) running sum for the gain of the layer norm on r
  T *acc_ih, *acc_bias;  // (B, G) running sums for the input layer norm's gain and the bias
};

// Backward for row b of step k (time t): δz, δr, δc_{t-1}. δh_{t-1} comes from the GEMM after.
template <typename T>
void backward_row(const Saved<T>& s, const Grads<T>& d, int64_t k, int64_t t, int64_t b) {
  const int64_t B = s.B, H = s.H, G = 4 * H, bt = t * B + b;
  T* dz = d.dgx + bt * G;
  if (s.mask && !s.mask[b * s.T_ + t]) {  // padded: no gradient into z; δh, δc pass through
    std::memset(dz, 0, G * sizeof(T));
    if (d.dr != d.dgx) std::memset(d.dr + bt * G, 0, G * sizeof(T));
    return;
  }
  const T *i = s.gates + bt * G, *f = i + H, *g = i + 2 * H, *o = i + 3 * H;
  const T *tc = s.tc + bt * H, *c_prev = s.cs + (k * B + b) * H;
  T *dh = d.dh + b * H, *dc = d.dc + b * H;
  if (d.dout) {
    const T* dout = d.dout + (b * s.T_ + t) * H;
    for (int64_t j = 0; j < H; ++j) dh[j] += dout[j];
  }
  // δ(normed c) = δh ⊙ o ⊙ (1 − tanh²), kept in the f slot of dz until it is overwritten
  T* dcn = dz + H;
  for (int64_t j = 0; j < H; ++j) dcn[j] = dh[j] * o[j] * (T(1) - tc[j] * tc[j]);
  if (s.xc) {  // δc += LN backward: rstd (γ·δ − mean(γ·δ) − x̂ mean(γ·δ·x̂))
    const T* xc = s.xc + bt * H;
    T m1 = 0, m2 = 0;
    for (int64_t j = 0; j < H; ++j) {
      const T gj = dcn[j] * s.ln_cw[j];
      m1 += gj;
      m2 += gj * xc[j];
      d.acc_w[b * H + j] += dcn[j] * xc[j];
      d.acc_b[b * H + j] += dcn[j];
    }
    m1 /= T(H);
    m2 /= T(H);
    for (int64_t j = 0; j < H; ++j) dc[j] += s.rc[bt] * (dcn[j] * s.ln_cw[j] - m1 - xc[j] * m2);
  } else {
    for (int64_t j = 0; j < H; ++j) dc[j] += dcn[j];
  }
  // δz = [δc g · i(1−i), δc c_{t−1} · f(1−f), δc i · (1−g²), δh tanh · o(1−o)]; δc_{t−1} = δc f
  for (int64_t j = 0; j < H; ++j) {
    dz[j] = dc[j] * g[j] * i[j] * (T(1) - i[j]);
    dz[H + j] = dc[j] * c_prev[j] * f[j] * (T(1) - f[j]);
    dz[2 * H + j] = dc[j] * i[j] * (T(1) - g[j] * g[j]);
    dz[3 * H + j] = dh[j] * tc[j] * o[j] * (T(1) - o[j]);
    dc[j] *= f[j];
  }
  if (s.xh) {  // δr = LN backward of δz ⊙ γ_hh
    const T* xh = s.xh + bt * G;
    T* dr = d.dr + bt * G;
    T m1 = 0, m2 = 0;
    T* acc = d.acc_hh + b * G;
    for (int64_t j = 0; j < G; ++j) {
      const T gj = dz[j] * s.ln_hh[j];
      m1 += gj;
      m2 += gj * xh[j];
      acc[j] += dz[j] * xh[j];
    }
    m1 /= T(G);
    m2 /= T(G);
    for (int64_t j = 0; j < G; ++j) dr[j] = s.rh[bt] * (dz[j] * s.ln_hh[j] - m1 - xh[j] * m2);
  }
  if (s.xi) {  // δ(raw gx) = LN backward of δz ⊙ γ_ih, in place (δr is its own buffer here)
    const T* xi = s.xi + bt * G;
    T *ai = d.acc_ih + b * G, *ab = d.acc_bias ? d.acc_bias + b * G : nullptr;
    T m1 = 0, m2 = 0;
    for (int64_t j = 0; j < G; ++j) {
      const T gj = dz[j] * s.ln_ih[j];
      m1 += gj;
      m2 += gj * xi[j];
      ai[j] += dz[j] * xi[j];
    }
    if (ab)
      for (int64_t j = 0; j < G; ++j) ab[j] += dz[j];
    m1 /= T(G);
    m2 /= T(G);
    for (int64_t j = 0; j < G; ++j) dz[j] = s.ri[bt] * (dz[j] * s.ln_ih[j] - m1 - xi[j] * m2);
  }
}

// Returns {d_gx (T,B,G), dh0, dc0, dW_hh, d_ln_hh, d_ln_cw, d_ln_cb, d_ln_ih, d_bias} (empty where the
// forward had no such input).
std::vector<Tensor> lstm_backward(const std::optional<Tensor>& d_out, const Tensor& d_hn, const Tensor& d_cn,
                                  const Tensor& hs, const Tensor& cs, const Tensor& gates, const Tensor& tc,
                                  const std::optional<Tensor>& xh, const std::optional<Tensor>& rh,
                                  const std::optional<Tensor>& xc, const std::optional<Tensor>& rc,
                                  const Tensor& w_hh, const std::optional<Tensor>& packed_t,
                                  const std::optional<Tensor>& mask, const std::optional<Tensor>& drop,
                                  const std::optional<Tensor>& ln_hh, const std::optional<Tensor>& ln_cw,
                                  const std::optional<Tensor>& xi, const std::optional<Tensor>& ri,
                                  const std::optional<Tensor>& ln_ih, bool has_bias, bool reverse, bool onednn) {
  const int64_t T_ = gates.size(0), B = gates.size(1), G = gates.size(2), H = G / 4;
  auto opt = gates.options();
  const bool ln = ln_hh.has_value();
  Tensor dgx = pooled_empty({T_, B, G}, opt), dr = ln ? pooled_empty({T_, B, G}, opt) : dgx;
  Tensor dh = d_hn.contiguous().clone(), dc = d_cn.contiguous().clone(), dh_next = at::empty({B, H}, opt);
  Tensor acc_w = ln ? at::zeros({B, H}, opt) : Tensor(), acc_b = ln ? at::zeros({B, H}, opt) : Tensor();
  Tensor acc_hh = ln ? at::zeros({B, G}, opt) : Tensor();
  const bool lni = ln_ih.has_value();
  TORCH_CHECK(!lni || ln, "lstm_backward: ln_ih needs the other layer norms");
  TORCH_CHECK(!has_bias || lni, "lstm_backward: bias only with ln_ih");
  Tensor acc_ih = lni ? at::zeros({B, G}, opt) : Tensor(), acc_bias = has_bias ? at::zeros({B, G}, opt) : Tensor();
  const Tensor pk = packed_t.value_or(Tensor());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    Saved<T> s{T_, B, H, nullptr, hs.data_ptr<T>(), cs.data_ptr<T>(), gates.data_ptr<T>(), tc.data_ptr<T>(),
               ln ? xh->data_ptr<T>() : nullptr, ln ? rh->data_ptr<T>() : nullptr,
               ln ? xc->data_ptr<T>() : nullptr, ln ? rc->data_ptr<T>() : nullptr,
               ln ? ln_hh->data_ptr<T>() : nullptr, ln ? ln_cw->data_ptr<T>() : nullptr, nullptr,
               mask ? mask->data_ptr<bool>() : nullptr, nullptr, 0.0};
    if (lni) {
      s.xi = xi->data_ptr<T>();
      s.ri = ri->data_ptr<T>();
      s.ln_ih = ln_ih->data_ptr<T>();
    }
    const bool* m = s.mask;
    const T* dp = drop ? drop->data_ptr<T>() : nullptr;
    for (int64_t k = T_ - 1; k >= 0; --k) {
      const int64_t t = reverse ? T_ - 1 - k : k;
      Grads<T> d{d_out ? d_out->data_ptr<T>() : nullptr, dh.data_ptr<T>(), dc.data_ptr<T>(),
                 dgx.data_ptr<T>(), dr.data_ptr<T>(), ln ? acc_w.data_ptr<T>() : nullptr,
                 ln ? acc_b.data_ptr<T>() : nullptr, ln ? acc_hh.data_ptr<T>() : nullptr,
                 lni ? acc_ih.data_ptr<T>() : nullptr, has_bias ? acc_bias.data_ptr<T>() : nullptr};
      at::parallel_for(0, B, grain(G), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) backward_row(s, d, k, t, b);
      });
      const Tensor res = linear_step(dr[t], w_hh, pk, dh_next);  // (B, H) = δr W_hh
      T *hn = res.data_ptr<T>(), *hc = dh.data_ptr<T>(), *out = dh_next.data_ptr<T>();
      for (int64_t b = 0; b < B; ++b) {  // dropout mask on δh_{t−1}; padded rows keep δh
        const bool keep = m && !m[b * T_ + t];
        for (int64_t j = 0; j < H; ++j)
          out[b * H + j] = keep ? hc[b * H + j] : (dp ? hn[b * H + j] * dp[b * H + j] : hn[b * H + j]);
      }
      std::swap(dh, dh_next);
    }
  });
  // ∂L/∂W_hh = Σ_t δr_tᵀ (h_{t−1} ⊙ drop): one GEMM over all T·B rows, in time order
  Tensor h_in = hs.narrow(0, 0, T_);
  if (drop) h_in = h_in * *drop;
  if (reverse) h_in = h_in.flip(0);
  Tensor dw;
  if (onednn) {  // ∂L/∂W_hhᵀ (H, G) = (h_in)ᵀ (H, T·B) · δr (T·B, G), δr read in place as the weight
    Tensor h_t = h_in.permute({2, 0, 1}).contiguous().view({H, T_ * B});
    dw = onednn_linear(h_t, dr.view({T_ * B, G}).t()).t().contiguous();
  } else {
    dw = dr.reshape({T_ * B, G}).t().mm(h_in.reshape({T_ * B, H}));
  }
  Tensor d_ln_hh, d_cw, d_cb;
  if (ln) {
    d_ln_hh = acc_hh.sum(0);
    d_cw = acc_w.sum(0);
    d_cb = acc_b.sum(0);
  }
  Tensor d_ln_ih = lni ? acc_ih.sum(0) : Tensor(), d_bias = has_bias ? acc_bias.sum(0) : Tensor();
  return {dgx, dh, dc, dw, d_ln_hh, d_cw, d_cb, d_ln_ih, d_bias};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM layer forward over all time steps");
  m.def("lstm_backward", &lstm_backward, "LSTM layer backward through time");
  m.def("onednn_linear", &onednn_linear, "x wᵀ through oneDNN (float32; w plain with any strides, or packed)");
  m.def("release_buffers", &release_buffers, "empty the buffer pool; returns the bytes it held");
}
