"""Search over output sequences: greedy and beam search, for any model with an incremental step.

Shape legend: B batch · K beam size · N new tokens · V vocabulary.

A decoder here is anything with ``step(tokens (B,), state) -> (logits (B, V), state)`` whose
state is a (nested) tuple/list of batch-first tensors — every seqlab model: the language model
(state from prefilling a prompt) and the encoder-decoder (state from ``start(source)``). The
search starts from ``start`` (B,) tokens: BOS for seq2seq, the prompt's last token for an LM.

Beam search keeps the K highest log-probability hypotheses per source. A hypothesis that has
emitted EOS is finished: it stays in the beam with its score frozen (it may only continue with
``pad`` at log-probability 0). The winner maximises ``log P(Y) / lp(Y)`` with the GNMT length
penalty ``lp(Y) = ((5 + |Y|) / 6)^α`` (Wu et al. 2016); α = 0 compares raw log-probabilities.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from seqlab.errors import ConfigError, ShapeError


def select_rows(state: Any, index: Tensor) -> Any:
    """Gather rows ``index`` of every tensor in a batch-first (nested) state."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(select_rows(s, index) for s in state))
    if isinstance(state, list | tuple):
        return type(state)(select_rows(s, index) for s in state)
    raise TypeError(f"cannot select rows of a state part of type {type(state).__name__}")


def _check(start: Tensor, max_new_tokens: int) -> None:
    if start.dim() != 1 or start.is_floating_point():
        raise ShapeError(f"expected start tokens of shape (B,), got {start.dtype} {tuple(start.shape)}")
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens: expected a positive number, got {max_new_tokens}")


@torch.no_grad()
def greedy_decode(
    model, state: Any, start: Tensor, max_new_tokens: int, eos: int | None = None, pad: int | None = None
) -> Tensor:
    """Take the argmax token at every step; rows that emitted ``eos`` continue with ``pad``.

    Returns:
        (B, N) tokens, N ≤ max_new_tokens (stops early when every row has emitted EOS).
    """
    _check(start, max_new_tokens)
    pad = eos if pad is None else pad
    tokens, out = start, []
    done = torch.zeros_like(start, dtype=torch.bool)
    for _ in range(max_new_tokens):
        logits, state = model.step(tokens, state)  # (B, V)
        tokens = logits.argmax(-1)
        if eos is not None:
            tokens = tokens.masked_fill(done, pad)
            done = done | (tokens == eos)
        out.append(tokens)
        if bool(done.all()):
            break
    return torch.stack(out, dim=1)


class BeamResult(NamedTuple):
    tokens: Tensor  # (B, N) best hypothesis per source, pad after EOS
    scores: Tensor  # (B,) its log-probability divided by the length penalty
    log_probs: Tensor  # (B,) its total log-probability


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT ``((5 + |Y|) / 6)^α``."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model,
    state: Any,
    start: Tensor,
    max_new_tokens: int,
    beam_size: int = 4,
    eos: int | None = None,
    pad: int | None = None,
    alpha: float = 0.0,
) -> BeamResult:
    """Beam search of width ``beam_size`` over a batch of sources (see the module docstring)."""
    _check(start, max_new_tokens)
    if beam_size < 1:
        raise ConfigError(f"beam_size: expected a positive number, got {beam_size}")
    pad = eos if pad is None else pad
    B, K = start.shape[0], beam_size
    device = start.device
    # 1. K copies of every row; only the first copy is alive at the start
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (B·K,)
    state, tokens = select_rows(state, rows), start[rows]
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0
    seqs = torch.empty(B * K, 0, dtype=torch.long, device=device)
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B * K, dtype=torch.long, device=device)
    for _ in range(max_new_tokens):
        # 2. extend every hypothesis by every token
        logits, state = model.step(tokens, state)  # (B·K, V)
        logp = torch.log_softmax(logits.float(), dim=-1)
        V = logp.shape[-1]
        if eos is not None and bool(finished.any()):
            logp[finished] = float("-inf")
            logp[finished, pad] = 0.0
        candidates = (scores.view(B * K, 1) + logp).view(B, K * V)
        # 3. keep the K best per source, and reorder the states to follow them
        scores, best = candidates.topk(K, dim=1)  # (B, K)
        parent = (torch.arange(B, device=device)[:, None] * K + best // V).view(-1)  # (B·K,)
        tokens = (best % V).view(-1)
        state, seqs = select_rows(state, parent), torch.cat([seqs[parent], tokens[:, None]], dim=1)
        lengths = lengths[parent] + (~finished[parent]).long()
        finished = finished[parent]
        if eos is not None:
            finished = finished | (tokens == eos)
        if bool(finished.all()):
            break
    # 4. the winner per source under the length penalty
    normalised = scores / length_penalty(lengths.view(B, K), alpha)
    winner = normalised.argmax(dim=1)  # (B,)
    pick = torch.arange(B, device=device) * K + winner
    return BeamResult(seqs[pick], normalised.gather(1, winner[:, None])[:, 0], scores.view(-1)[pick])


@torch.no_grad()
def lm_beam_search(
    model, prompt: Tensor, max_new_tokens: int, beam_size: int = 4, eos: int | None = None, alpha: float = 0.0
) -> Tensor:
    """Beam search continuation of ``prompt`` (B, T0) by a language model: the prompt but its last
    token is prefilled with ``forward``, the search starts from the last token.

    Returns:
        (B, T0 + N) prompt followed by the best continuation.
    """
    if prompt.dim() != 2 or prompt.shape[1] == 0:
        raise ShapeError(f"expected a non-empty prompt of shape (B, T0), got {tuple(prompt.shape)}")
    was_training = model.training
    model.eval()
    try:
        state = model(prompt[:, :-1])[1] if prompt.shape[1] > 1 else None
        result = beam_search(model, state, prompt[:, -1], max_new_tokens, beam_size, eos, alpha=alpha)
    finally:
        model.train(was_training)
    return torch.cat([prompt, result.tokens], dim=1)
