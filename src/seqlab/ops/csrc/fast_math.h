// Vectorisable nonlinearities for seqlab's C++ extensions (shared by csrc/layers.cpp and
// rnn/csrc/lstm.cpp): float uses a Cephes-style polynomial exp (rel. error ~1e-7) that the
// compiler vectorises; double uses libm (the accuracy reference in the tests).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace seqlab {

inline float exp_poly(float x) {
  x = std::max(std::min(x, 88.0f), -87.0f);  // vectorises with -fno-trapping-math
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_poly(-x)); }
inline float tanh_(float x) { return 1.0f - 2.0f / (exp_poly(2.0f * x) + 1.0f); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

}  // namespace seqlab
