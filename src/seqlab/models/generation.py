"""Autoregressive generation: prefill the prompt with ``forward``, then a ``step`` loop.

Shape legend: B batch · T0 prompt length · N new tokens · V vocabulary.
Per-token cost is constant in the context length for recurrent mixers (the state is fixed-size).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.errors import ConfigError, ShapeError


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set to -inf every logit outside the top-k and outside the nucleus of mass top_p.

    Args:
        logits: (B, V).
        top_k: keep the k largest (None or 0 = all).
        top_p: keep the smallest set of largest-probability tokens whose mass reaches top_p.
    """
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, V)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already enough
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def repetition_penalty(logits: Tensor, history: Tensor, penalty: float) -> Tensor:
    """Discourage tokens already in ``history`` (Keskar et al. 2019, CTRL): their logit is
    divided by ``penalty`` if positive and multiplied by it if negative (penalty 1 = off).

    Args:
        logits: (B, V); history: (B, t) token ids seen so far (prompt and generated).
    """
    if penalty == 1.0 or history.numel() == 0:
        return logits
    seen = logits.gather(1, history)  # (B, t)
    return logits.scatter(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))


@torch.no_grad()
def generate(
    model,
    prompt: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    repetition: float = 1.0,
    allowed: int | None = None,
) -> Tensor:
    """Sample ``max_new_tokens`` continuations of ``prompt``.

    ``temperature == 0`` is greedy decoding (argmax; deterministic). Otherwise tokens are drawn
    from ``softmax(logits / temperature)`` after top-k / top-p filtering, with ``generator``.
    ``repetition`` > 1 applies :func:`repetition_penalty` over the prompt and the output so far.
    ``allowed``: only ids < allowed are drawn (a condlm's text tokens: its control tokens
    ``[LABEL_k]`` sit after them and are never emitted); None = the whole vocabulary.

    Args:
        model: a :class:`~seqlab.models.sequence.SequenceModel` over tokens.
        prompt: (B, T0) token ids, T0 ≥ 1.

    Returns:
        (B, T0 + N) prompt followed by the generated tokens.
    """
    if prompt.dim() != 2 or prompt.shape[1] == 0:
        raise ShapeError(f"expected a non-empty prompt of shape (B, T0), got {tuple(prompt.shape)}")
    if max_new_tokens < 0 or temperature < 0:
        raise ConfigError("max_new_tokens and temperature must be non-negative")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p: expected a value in (0, 1], got {top_p}")
    if top_k is not None and top_k < 0:
        raise ConfigError(f"top_k: expected a non-negative number (0 = no limit), got {top_k}")
    if repetition <= 0:
        raise ConfigError(f"repetition penalty: expected a positive number (1 = off), got {repetition}")
    if not model.io.is_language_model:
        raise ConfigError("generate needs a language model (tokens in, next-token logits out)")
    was_training = model.training
    model.eval()
    try:
        logits, state = model(prompt)  # prefill: (B, T0, V)
        logits = logits[:, -1]
        out = [prompt]
        for i in range(max_new_tokens):
            if allowed is not None:
                logits = logits[:, :allowed]  # (B, allowed)
            if repetition != 1.0:  # the history is only gathered when the penalty is on
                logits = repetition_penalty(logits, torch.cat(out, dim=1), repetition)
            if temperature == 0:
                token = logits.argmax(-1)  # (B,)
            else:
                probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
                token = torch.multinomial(probs, 1, generator=generator)[:, 0]  # (B,)
            out.append(token[:, None])
            if i + 1 < max_new_tokens:
                logits, state = model.step(token, state)  # (B, V)
    finally:
        model.train(was_training)
    return torch.cat(out, dim=1)
