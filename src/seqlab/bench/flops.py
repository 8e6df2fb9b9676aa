"""Analytic model FLOPs per token, for model-FLOPs utilisation (MFU).

Shape legend: B batch · T time · D model width · H heads · K head dim · I inner width ·
L chunk length · C context length (decode).

The count is the FLOPs the model's mathematics needs (a multiply-add = 2 FLOPs), not what one
kernel executes, in the convention of Kaplan et al. (2020) and PaLM (Chowdhery et al. 2022):

    F_fwd(T) = 2·N_mm + Σ_layers mixing(T)

* ``N_mm``: the entries of every weight matrix a token is multiplied by — parameters with two or
  more dimensions, except embedding tables (a lookup, no multiply) and biases. This gives the
  textbook counts: an LSTM layer 2·4H(D+H) (four gates, each a (D+H) → H matmul), a GRU layer
  2·3H(D+H), an Elman RNN layer 2·H(D+H); an attention block's projections 2·4D² (q, k, v, out)
  and its feed-forward 2·2·D·d_ff (3 matrices if gated); block-diagonal (head-wise) and depthwise
  convolution weights count their stored entries only, as they should. A tied LM head counts.
* ``mixing(T)``: the sequence-mixing products that no weight holds.
  - causal attention: each query meets on average T/2 keys: QKᵀ 2·(T/2)·D and AV 2·(T/2)·D,
    so ``2·T·D`` per token (T → min(T, W) with a window W);
  - mLSTM, per head: chunkwise ``4K² + 2·L·K`` (read C_{t−1} q and write v kᵀ into C: 2K² each;
    causal attention inside a chunk of L = min(chunk_size, T)); parallel ``2·T·K``; recurrent
    ``4K²``;
  - LSTM / GRU / RNN / sLSTM: none (their recurrent weights are in N_mm).
* training (``fwd+bwd``): ``3·F_fwd`` (the backward pass is two matmuls per forward matmul: one
  for the input gradient, one for the weight gradient);
* ``prefill`` / ``fwd``: ``F_fwd(T)``; ``decode`` (one token after a context C): ``2·N_mm`` plus,
  per attention layer, ``4·C·D`` (the new query reads all C cached keys and values), per mLSTM
  layer ``4K²`` per head.

Norms, activations, gates' element-wise products and softmax are left out (O(D) per token against
O(D²)), as in the references above.
"""

from __future__ import annotations

from torch import nn

KINDS = ("fwd", "fwd+bwd", "prefill", "decode")


def matmul_params(module: nn.Module) -> int:
    """N_mm: entries of the weight matrices (ndim ≥ 2, not embeddings, not biases), each once."""
    seen: set[int] = set()
    total = 0
    for sub in module.modules():
        if isinstance(sub, nn.Embedding):
            continue
        for name, p in sub.named_parameters(recurse=False):
            if p.dim() < 2 or "bias" in name or id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
    return total


def _attention_width(sub: nn.Module) -> tuple[int, int] | None:
    """(D_qk = H·K, window) of an attention module we know, else None."""
    from seqlab.mixers.attention import AttentionMixer

    if isinstance(sub, AttentionMixer):
        return sub.num_heads * sub.head_dim, sub.config.window
    if isinstance(sub, nn.MultiheadAttention):
        return sub.embed_dim, 0
    return None


def mixing_flops(module: nn.Module, T: int, kind: str = "fwd") -> float:
    """Σ over the attention and mLSTM layers inside ``module`` of their per-token mixing FLOPs."""
    from seqlab.mixers.mlstm import MLSTMMixer

    total = 0.0
    for sub in module.modules():
        attention = _attention_width(sub)
        if attention is not None:
            width, window = attention
            span = min(T, window) if window else T
            total += 4 * span * width if kind == "decode" else 2 * span * width
        elif isinstance(sub, MLSTMMixer):
            H = sub.config.num_heads
            K = sub.config.inner_dim(sub.d_model) // H
            mode = "recurrent" if kind == "decode" else sub.config.mode
            if mode == "chunkwise":
                total += H * (4 * K * K + 2 * min(sub.config.chunk_size, T) * K)
            elif mode == "parallel":
                total += H * 2 * T * K
            else:
                total += H * 4 * K * K
    return total


def forward_flops(module: nn.Module, T: int, kind: str = "fwd") -> float:
    """F_fwd: model FLOPs of one token's forward pass at sequence length (or context) T."""
    return 2 * matmul_params(module) + mixing_flops(module, T, kind)


def flops_per_token(module: nn.Module, T: int, kind: str) -> float:
    """Model FLOPs per token of one ``kind`` call: fwd+bwd = 3·F_fwd, otherwise F_fwd."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    fwd = forward_flops(module, T, kind)
    return 3 * fwd if kind == "fwd+bwd" else fwd
