"""Equivalence checks several test files share: cached step-by-step decoding == one full forward;
and the skip rule of the compiled-extension tests."""

from __future__ import annotations

import pytest
import torch


def built_or_skip(load, state: dict):
    """The extension ``load()`` builds, or a skip naming why it could not be built."""
    module = load()
    if module is None:
        pytest.skip(f"C++ extension unavailable: {state['error']}")
    return module


def assert_states_close(a, b, **tol) -> None:
    """Two (nested) states: same structure, tensors close."""
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, **tol)
        return
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert_states_close(x, y, **tol)


def assert_prefill_then_steps_equals_forward(model, x: torch.Tensor, prefill: int, **tol) -> None:
    """A language model: forward on x[:, :prefill] then ``step`` per token == forward on x, logits
    and final state (positions included)."""
    full, final = model(x)
    logits, state = model(x[:, :prefill])
    outs = [logits]
    for t in range(prefill, x.shape[1]):
        step_logits, state = model.step(x[:, t], state)
        outs.append(step_logits[:, None])
    torch.testing.assert_close(torch.cat(outs, 1), full, **tol)
    assert torch.equal(state.position, final.position)
    assert_states_close(state.blocks, final.blocks, **tol)


def assert_incremental_decoding_equals_teacher_forcing(model, source, inputs, source_mask, **tol):
    """An encoder-decoder: ``start`` + ``step`` per target token, and a split ``decode`` with the
    carried state, == the teacher-forced forward. Returns the final step state."""
    full, _ = model(source, inputs, source_mask=source_mask)  # (B, T, V)
    state = model.start(source, source_mask)
    steps = []
    for t in range(inputs.shape[1]):
        logits, state = model.step(inputs[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, **tol)
    a, carried = model.decode(inputs[:, :4], model.start(source, source_mask))
    b, _ = model.decode(inputs[:, 4:], carried)
    torch.testing.assert_close(torch.cat([a, b], 1), full, **tol)
    return state


def assert_beam_one_equals_greedy(model, source, source_mask, wide_beam: int):
    """Beam 1 == greedy decoding, and a wider beam never finds a worse sequence; returns the
    width-``wide_beam`` result for further checks."""
    from seqlab.models.decoding import beam_search, greedy_decode

    start = torch.full((source.shape[0],), 1)
    greedy = greedy_decode(model, model.start(source, source_mask), start, 8, eos=2, pad=0)
    one = beam_search(model, model.start(source, source_mask), start, 8, beam_size=1, eos=2, pad=0)
    assert one.tokens.tolist() == greedy.tolist()
    wide = beam_search(model, model.start(source, source_mask), start, 8, beam_size=wide_beam, eos=2, pad=0)
    assert (wide.log_probs >= one.log_probs - 1e-9).all()  # a wider beam never finds worse
    return wide
