// The functions of seqlab's compiled-layers extension (one module, three sources): see
// layers.cpp (head-wise linear map, causal conv, the Python bindings), mlstm_output.cpp (the
// mLSTM's gated output norm) and onednn_bmm.cpp (batched products through oneDNN).
#pragma once

#include <torch/extension.h>

#include <vector>

torch::Tensor headwise_forward(const torch::Tensor& x, const torch::Tensor& w);
torch::Tensor headwise_weight_backward(const torch::Tensor& dy, const torch::Tensor& x, int64_t NB);
torch::Tensor causal_conv_forward(const torch::Tensor& x, const torch::Tensor& state, const torch::Tensor& w,
                                  const c10::optional<torch::Tensor>& bias);
std::vector<torch::Tensor> causal_conv_backward(const torch::Tensor& dy, const torch::Tensor& x,
                                                const torch::Tensor& state, const torch::Tensor& w, bool has_bias);
std::vector<torch::Tensor> gated_norm_forward(const torch::Tensor& h, const torch::Tensor& gamma,
                                              const torch::Tensor& skip, const torch::Tensor& c,
                                              const torch::Tensor& z, int64_t heads, double eps);
std::vector<torch::Tensor> gated_norm_backward(const torch::Tensor& d_out, const torch::Tensor& h,
                                               const torch::Tensor& gamma, const torch::Tensor& skip,
                                               const torch::Tensor& c, const torch::Tensor& z,
                                               const torch::Tensor& mean, const torch::Tensor& rstd);
bool has_onednn_bmm();
void bmm_onednn(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out, bool accumulate);
