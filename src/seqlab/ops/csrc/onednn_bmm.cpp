// Batched matrix products through oneDNN for the chunkwise mLSTM
// (seqlab.ops.compiled_layers.bmm_into):
// torch's float32 bmm on CPU goes to MKL, which is slower than oneDNN on AMD CPUs (BENCHMARKS.md:
// the mLSTM block with and without it).
// torch exports the oneDNN matmul it uses for bf16 (at::native::mkldnn_matmul) but ships no
// header for it, so it is declared here as a weak symbol: a torch without it (or with another
// signature, hence another mangled name) leaves the address null, and bmm_onednn uses at::bmm.
#include <torch/extension.h>

#include "layers.h"

namespace at::native {
// out = alpha · a b + beta · out (a, b 3-D, contiguous or transposed in the last two dimensions)
void mkldnn_matmul(const Tensor& a, const Tensor& b, const Tensor& out, float beta, float alpha)
    __attribute__((weak));
}  // namespace at::native

// whether bmm_onednn runs oneDNN (torch exports its matmul, has oneDNN, and it is enabled)
bool has_onednn_bmm() {
  return at::native::mkldnn_matmul != nullptr && at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
}

// out = a b (+ out when accumulate): a (n, i, j), b (n, j, k), out (n, i, k) contiguous float32
void bmm_onednn(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out, bool accumulate) {
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1) &&
                  out.size(0) == a.size(0) && out.size(1) == a.size(1) && out.size(2) == b.size(2),
              "bmm_onednn: expected a (n, i, j), b (n, j, k), out (n, i, k)");
  TORCH_CHECK(out.is_contiguous(), "bmm_onednn: out must be contiguous");
  const bool f32 = a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && out.scalar_type() == at::kFloat;
  if (has_onednn_bmm() && f32 && a.is_cpu() && b.is_cpu() && out.is_cpu()) {
    at::native::mkldnn_matmul(a, b, out, accumulate ? 1.0f : 0.0f, 1.0f);
  } else if (accumulate) {
    out.baddbmm_(a, b);
  } else {
    at::bmm_out(const_cast<torch::Tensor&>(out), a, b);
  }
}
