"""Scaled dot-product attention: a naive reference and the fast path on torch's SDPA."""

from seqlab.ops.attention.sdpa import attention, attention_naive, attention_sdpa, causal_mask

__all__ = ["attention", "attention_naive", "attention_sdpa", "causal_mask"]
