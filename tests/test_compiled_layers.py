"""The compiled head-wise linear, causal conv and gated output norm equal the torch code they
replace (float64: outputs and every gradient, carried state, padding masks with gaps, short
sequences), and the layers fall back to torch with one warning when the extension cannot be built."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from checks import GuardedMemory, built_or_skip
from seqlab.layers import CausalConv1d, HeadwiseLinear, MultiHeadNorm
from seqlab.mixers import build_mixer
from seqlab.ops import compiled_layers

D64 = torch.float64


@pytest.fixture(scope="module")
def ext():
    return built_or_skip(compiled_layers.load_extension, compiled_layers._EXTENSION.state)


def _on_graph(y, name: str) -> bool:
    """Whether a node of type ``name`` (e.g. ``_HeadwiseBackward``) produced ``y`` (a few levels up)."""
    nodes = [y.grad_fn]
    for _ in range(4):
        if any(type(n).__name__ == name for n in nodes):
            return True
        nodes = [m for n in nodes if n is not None for m, _ in n.next_functions]
    return False


def _grads(layer, inputs, out, g):
    leaves = [*inputs, *(p for p in layer.parameters())]
    return torch.autograd.grad(out, leaves, g)


def _twins(make):
    """The same layer twice, one of them compiled, with non-trivial parameters."""
    torch.manual_seed(0)
    ref = make().double()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_()
    fast = make().double()
    fast.load_state_dict(ref.state_dict())
    fast.compiled = True
    return ref, fast


@pytest.mark.parametrize(
    ("features", "heads", "out", "bias"), [(16, 4, 16, False), (12, 3, 6, True), (8, 8, 16, True)]
)
def test_headwise_linear_equals_the_einsum(ext, features, heads, out, bias):
    ref, fast = _twins(lambda: HeadwiseLinear(features, out, heads, bias))
    x = torch.randn(3, 7, features, dtype=D64, requires_grad=True)
    g = torch.randn(3, 7, out, dtype=D64)
    y_ref, y = ref(x), fast(x)
    assert _on_graph(y, "_HeadwiseBackward") and not _on_graph(y_ref, "_HeadwiseBackward")
    torch.testing.assert_close(y, y_ref)
    for a, b in zip(_grads(fast, [x], y, g), _grads(ref, [x], y_ref, g), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("kernel", "T", "bias"), [(4, 9, True), (4, 2, True), (2, 5, False), (1, 4, True)])
def test_causal_conv_equals_conv1d_with_a_carried_state(ext, kernel, T, bias):
    C = 6
    ref, fast = _twins(lambda: CausalConv1d(C, kernel, bias))
    x = torch.randn(3, T, C, dtype=D64, requires_grad=True)
    state = torch.randn(3, kernel - 1, C, dtype=D64, requires_grad=True)
    g = torch.randn(3, T, C, dtype=D64)
    (y_ref, s_ref), (y, s) = ref(x, state), fast(x, state)
    assert _on_graph(y, "_CausalConvBackward")
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(s, s_ref)
    loss_ref, loss = (y_ref * g).sum() + s_ref.sum(), (y * g).sum() + s.sum()
    for a, b in zip(
        _grads(fast, [x, state], loss, None), _grads(ref, [x, state], loss_ref, None), strict=True
    ):
        torch.testing.assert_close(a, b)


def test_causal_conv_with_padding_gaps(ext):
    ref, fast = _twins(lambda: CausalConv1d(5, 4))
    x = torch.randn(3, 8, 5, dtype=D64, requires_grad=True)
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[0, 2:4] = False  # a gap
    mask[1, 5:] = False  # right padding
    mask[2, :3] = False  # left padding
    (y_ref, s_ref), (y, s) = ref(x, mask=mask), fast(x, mask=mask)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(s, s_ref)
    g = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(y_ref, x, g)[0])


@pytest.mark.parametrize(("heads", "V", "strided_z"), [(4, 8, True), (3, 5, False), (1, 16, True)])
def test_gated_norm_equals_the_torch_code(ext, heads, V, strided_z):
    """(MultiHeadNorm(h) + s ⊙ c) ⊙ silu(z) in one pass: output and the gradients of h, γ, s, c
    and z (a half of a wider tensor, as the up-projection's chunk gives it) equal the torch code."""
    torch.manual_seed(heads)
    I = heads * V
    norm = MultiHeadNorm(heads, I).double()
    torch.nn.init.normal_(norm.weight)
    h, c = (torch.randn(2, 9, I, dtype=D64, requires_grad=True) for _ in range(2))
    zz = torch.randn(2, 9, 2 * I if strided_z else I, dtype=D64, requires_grad=True)
    z = zz[..., -I:]
    skip = torch.randn(I, dtype=D64, requires_grad=True)
    g = torch.randn(2, 9, I, dtype=D64)
    y = compiled_layers.gated_norm(h, norm.weight, skip, c, z, heads, norm.eps)
    y_ref = (norm(h) + skip * c) * F.silu(z)
    torch.testing.assert_close(y, y_ref)
    leaves = (h, norm.weight, skip, c, zz)
    for a, b in zip(torch.autograd.grad(y, leaves, g), torch.autograd.grad(y_ref, leaves, g), strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck(ext):
    w = torch.randn(3, 2, 4, dtype=D64, requires_grad=True)
    x = torch.randn(5, 12, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(compiled_layers.headwise_linear, (x, w))
    xc, st = (
        torch.randn(2, 5, 3, dtype=D64, requires_grad=True),
        torch.randn(2, 3, 3, dtype=D64, requires_grad=True),
    )
    wc, bc = torch.randn(3, 4, dtype=D64, requires_grad=True), torch.randn(3, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(compiled_layers.causal_conv, (xc, st, wc, bc))
    h, c, z = (torch.randn(3, 8, dtype=D64, requires_grad=True) for _ in range(3))
    gamma, skip = torch.randn(8, dtype=D64, requires_grad=True), torch.randn(8, dtype=D64, requires_grad=True)
    norm = lambda *a: compiled_layers.gated_norm(*a, 2, 1e-5)  # noqa: E731
    assert torch.autograd.gradcheck(norm, (h, gamma, skip, c, z))


def test_compiled_mlstm_float32_training_step_equals_naive(ext):
    """A float32 mLSTM layer (compiled backend) at a realistic width: outputs and parameter
    gradients equal the torch backend's to float32 rounding."""
    torch.manual_seed(0)
    naive = build_mixer("mlstm", 64, {"num_heads": 2})
    fast = build_mixer("mlstm", 64, {"num_heads": 2, "backend": "compiled"})
    fast.load_state_dict(naive.state_dict())
    x = torch.randn(4, 50, 64)
    y_ref, y = naive(x)[0], fast(x)[0]
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    y_ref.pow(2).sum().backward()
    y.pow(2).sum().backward()
    for (name, p), q in zip(naive.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-3, msg=name)


def test_without_a_compiler_the_compiled_mlstm_equals_the_naive_one(monkeypatch):
    """No extension: the compiled mLSTM layer warns and runs the torch code (output norm and
    chunkwise products included): the same outputs and gradients as the naive backend."""
    torch.manual_seed(0)
    naive = build_mixer("mlstm", 32, {"num_heads": 2, "chunk_size": 8})
    fast = build_mixer("mlstm", 32, {"num_heads": 2, "chunk_size": 8, "backend": "compiled"})
    fast.load_state_dict(naive.state_dict())

    def no_compiler():
        raise RuntimeError("no C++ compiler ('c++' not found on PATH)")

    monkeypatch.setattr(compiled_layers._EXTENSION, "builder", no_compiler)
    monkeypatch.setitem(compiled_layers._EXTENSION.state, "module", None)
    monkeypatch.setitem(compiled_layers._EXTENSION.state, "error", None)
    x = torch.randn(2, 20, 32)
    with pytest.warns(RuntimeWarning, match="compiled xLSTM layers is unavailable"):
        y = fast(x)[0]
    y_ref = naive(x)[0]
    torch.testing.assert_close(y, y_ref)
    grads = torch.autograd.grad(y.sum(), list(fast.parameters()))
    for a, b in zip(grads, torch.autograd.grad(y_ref.sum(), list(naive.parameters())), strict=True):
        torch.testing.assert_close(a, b)


def test_without_a_compiler_the_layers_warn_once_and_use_torch(monkeypatch):
    def no_compiler():
        raise RuntimeError("no C++ compiler ('c++' not found on PATH)")

    monkeypatch.setattr(compiled_layers._EXTENSION, "builder", no_compiler)
    monkeypatch.setitem(compiled_layers._EXTENSION.state, "module", None)
    monkeypatch.setitem(compiled_layers._EXTENSION.state, "error", None)
    ref, fast = _twins(lambda: HeadwiseLinear(8, 8, 2))
    x = torch.randn(2, 3, 8, dtype=D64)
    with pytest.warns(RuntimeWarning, match="compiled xLSTM layers is unavailable.*no C\\+\\+ compiler"):
        y = fast(x)
    torch.testing.assert_close(y, ref(x))
    assert not _on_graph(fast(x.requires_grad_()), "_HeadwiseBackward")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mmap/mprotect through glibc")
@pytest.mark.parametrize("dtype", [torch.float32, D64])
@pytest.mark.parametrize("at_end", [True, False])
def test_kernels_stay_inside_their_tensors(ext, dtype, at_end):
    """Every kernel of the extension on inputs that end (or start) exactly at an inaccessible
    page, with row counts that are no multiple of any vector width: no read outside a tensor.
    (GCC 12 vectorised the head-wise weight gradient's row loop into loads past the last row.)"""
    torch.manual_seed(0)
    memory = GuardedMemory()
    try:
        g = lambda *shape: memory.copy(torch.randn(*shape, dtype=dtype), at_end)  # noqa: E731
        N, NB = 131, 8
        x, dy, w = g(N, NB * 4), g(N, NB * 4), g(NB, 4, 4)
        torch.testing.assert_close(
            ext.headwise_forward(x, w), torch.einsum("nhi,hoi->nho", x.view(N, NB, 4), w).flatten(1)
        )
        ref = torch.einsum("nho,nhi->hoi", dy.view(N, NB, 4), x.view(N, NB, 4))
        torch.testing.assert_close(ext.headwise_weight_backward(dy, x, NB), ref, rtol=1e-4, atol=1e-4)
        xo, dyo = g(N, NB * 3), g(N, NB * 5)  # blocks of 3 inputs, 5 outputs: the general loops
        ext.headwise_forward(xo, g(NB, 5, 3)), ext.headwise_weight_backward(dyo, xo, NB)
        xc, state, wc, bias = g(3, 37, 7), g(3, 3, 7), g(7, 4), g(7)
        ext.causal_conv_forward(xc, state, wc, bias)
        ext.causal_conv_backward(g(3, 37, 7), xc, state, wc, True)
        h, c, gamma, skip = g(N, 24), g(N, 24), g(24), g(24)
        for z in (g(N, 24), g(N, 48)[:, 24:]):  # contiguous, and the last half of wider rows
            _, mean, rstd = ext.gated_norm_forward(h, gamma, skip, c, z, 3, 1e-5)
            ext.gated_norm_backward(
                g(N, 24), h, gamma, skip, c, z, memory.copy(mean, at_end), memory.copy(rstd, at_end)
            )
        a, b = g(5, 13, 7), g(5, 7, 11)
        result = memory.copy(torch.zeros(5, 13, 11, dtype=dtype), at_end)
        ext.bmm_onednn(a, b, result, False)
        torch.testing.assert_close(result, torch.bmm(a, b), rtol=1e-4, atol=1e-4)
    finally:
        memory.close()
