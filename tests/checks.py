"""Equivalence checks several test files share: cached step-by-step decoding == one full forward;
the skip rule of the compiled-extension tests, and guard-paged tensors for their bounds tests."""

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


class GuardedMemory:
    """Copies of tensors in mappings of their own with inaccessible pages right before and after
    them (Linux, glibc): a kernel that reads or writes one element outside its input segfaults.
    ``copy(t, at_end)`` places the copy against the page after it (or the one before); ``close()``
    unmaps everything."""

    PAGE = 4096

    def __init__(self) -> None:
        import ctypes

        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.libc.mmap.restype = ctypes.c_void_p
        self.libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_long]  # fmt: skip
        self.libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.maps: list[tuple[int, int]] = []

    def copy(self, t: torch.Tensor, at_end: bool) -> torch.Tensor:
        import ctypes

        nbytes = t.numel() * t.element_size()
        span = -(-nbytes // self.PAGE) * self.PAGE
        base = self.libc.mmap(None, span + 2 * self.PAGE, 3, 0x22, -1, 0)  # read|write, private|anonymous
        assert base not in (None, ctypes.c_void_p(-1).value)
        self.maps.append((base, span + 2 * self.PAGE))
        self.libc.mprotect(base, self.PAGE, 0)
        self.libc.mprotect(base + self.PAGE + span, self.PAGE, 0)
        start = base + self.PAGE + (span - nbytes if at_end else 0)
        buffer = (ctypes.c_byte * nbytes).from_address(start)
        out = torch.frombuffer(buffer, dtype=t.dtype).view(t.shape)
        out.copy_(t)
        return out

    def close(self) -> None:
        for base, size in self.maps:
            self.libc.munmap(base, size)
