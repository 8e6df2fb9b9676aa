"""The chunkwise mLSTM's memory scan (hand-written backward) equals autograd over the plain loop,
and oneDNN's batched product (the compiled backend) equals torch's bmm, with its gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from checks import built_or_skip
from seqlab.ops import compiled_layers
from seqlab.ops.mlstm import MLSTMCellState, mlstm_chunkwise, mlstm_recurrent
from seqlab.ops.mlstm.memory import chunk_memory, onednn_ready

D64 = torch.float64


@pytest.fixture(scope="module")
def ext():
    module = built_or_skip(compiled_layers.load_extension, compiled_layers._EXTENSION.state)
    if not module.has_onednn_bmm():
        pytest.skip("this torch does not export its oneDNN matmul")
    return module


def _reference(q_u, k_w, v, decay, P, C):
    """The recurrence of the module docstring as a plain loop, differentiated by autograd."""
    hs = []
    for c in range(q_u.shape[0]):
        hs.append(q_u[c] @ C + P[c] @ v[c])  # (M, L, V)
        C = decay[c, :, None, None] * C + k_w[c].transpose(1, 2) @ v[c]  # (M, K, V)
    return torch.stack(hs), C


def _inputs(N, M=3, L=4, K=5, V=6, dtype=D64, seed=0):
    torch.manual_seed(seed)
    q_u, k_w = torch.randn(N, M, L, K, dtype=dtype), torch.randn(N, M, L, K, dtype=dtype)
    v, decay = torch.randn(N, M, L, V, dtype=dtype), torch.rand(N, M, dtype=dtype)
    P, C = torch.randn(N, M, L, L, dtype=dtype).tril(), torch.randn(M, K, V, dtype=dtype)
    return [t.requires_grad_() for t in (q_u, k_w, v, decay, P, C)]


def _run(fn, inputs, seed=1):
    """Outputs, final memory and the gradients of every input for a loss on both outputs."""
    h, C = fn(*inputs)
    torch.manual_seed(seed)
    loss = (h * torch.randn_like(h)).sum() + (C * torch.randn_like(C)).sum()
    return [h, C, *torch.autograd.grad(loss, inputs)]


@pytest.mark.parametrize("N", [1, 2, 5])
def test_scan_equals_autograd_over_the_loop_float64(N):
    """torch products: outputs, the final memory and the gradients of q̃, k̃, v, the decays, P and
    the initial memory all equal the autograd loop's (float64, N = 1, 2, 5 chunks)."""
    inputs = _inputs(N)
    for ours, ref in zip(_run(chunk_memory, inputs), _run(_reference, inputs), strict=True):
        torch.testing.assert_close(ours, ref)


def test_scan_gradient_check():
    torch.autograd.gradcheck(chunk_memory, _inputs(3, M=2, L=3, K=2, V=2))


def test_scan_without_a_gradient_for_the_final_memory():
    """Only h used in the loss: the carried gradient starts from zero."""
    inputs = _inputs(4)
    ours = torch.autograd.grad(chunk_memory(*inputs)[0].sum(), inputs)
    ref = torch.autograd.grad(_reference(*inputs)[0].sum(), inputs)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_onednn_scan_equals_the_loop_float32(ext):
    """The same scan with every product in oneDNN (float32) equals the autograd loop to float32
    rounding, at the shapes of a real block (M = 8 heads × batch, L = 16, K = V = 32)."""
    inputs = _inputs(6, M=8, L=16, K=32, V=32, dtype=torch.float32)
    fast = _run(lambda *a: chunk_memory(*a, onednn=True), inputs)
    for ours, ref in zip(fast, _run(_reference, inputs), strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("transpose", [(False, False), (True, False), (False, True), (True, True)])
def test_onednn_bmm_equals_torch(ext, transpose):
    """compiled_layers.bmm (oneDNN forward and backward) equals torch.bmm, operands contiguous or
    transposed in their last two dimensions; bmm_into overwrites or accumulates into out."""
    torch.manual_seed(0)
    a = torch.randn(7, 9, 5) if not transpose[0] else torch.randn(7, 5, 9).transpose(1, 2)
    b = torch.randn(7, 5, 11) if not transpose[1] else torch.randn(7, 11, 5).transpose(1, 2)
    a.requires_grad_(), b.requires_grad_()
    g = torch.randn(7, 9, 11)
    ours, ref = compiled_layers.bmm(a, b), torch.bmm(a, b)
    torch.testing.assert_close(ours, ref)
    for x, y in zip(torch.autograd.grad(ours, (a, b), g), torch.autograd.grad(ref, (a, b), g), strict=True):
        torch.testing.assert_close(x, y)
    out = torch.ones(7, 9, 11)
    compiled_layers.bmm_into(a.detach(), b.detach(), out, accumulate=True)
    torch.testing.assert_close(out, ref.detach() + 1)
    compiled_layers.bmm_into(a.detach(), b.detach(), out)
    torch.testing.assert_close(out, ref.detach())


def test_onednn_bmm_into_falls_back_to_torch_for_float64(ext):
    torch.manual_seed(0)
    a, b = torch.randn(3, 4, 5, dtype=D64), torch.randn(3, 5, 2, dtype=D64)
    out = torch.ones(3, 4, 2, dtype=D64)
    compiled_layers.bmm_into(a, b, out, accumulate=True)
    torch.testing.assert_close(out, torch.bmm(a, b) + 1)


def test_onednn_is_not_used_under_autocast_or_for_float64(ext):
    x = torch.zeros(2, 2)
    assert onednn_ready(x)
    assert not onednn_ready(x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not onednn_ready(x)


@pytest.mark.parametrize("chunk_size", [4, 7])
def test_chunkwise_with_onednn_equals_the_step_loop(ext, chunk_size):
    """The whole chunkwise op with oneDNN products (float32), from a carried state, equals the
    step loop: outputs, final (C, n, m) and every gradient."""
    torch.manual_seed(chunk_size)
    B, H, T, K = 2, 2, 13, 8
    q, k, v = (torch.randn(B, H, T, K) for _ in range(3))
    i_pre, log_f = torch.randn(B, H, T), F.logsigmoid(torch.randn(B, H, T) + 2)
    C0, n0, m0 = torch.randn(B, H, K, K), torch.randn(B, H, K), torch.randn(B, H)
    leaves = [t.requires_grad_() for t in (q, k, v, i_pre, log_f, C0, n0)]
    g = torch.randn(B, H, T, K)
    results = []
    for fn in (mlstm_recurrent, lambda *a: mlstm_chunkwise(*a, chunk_size=chunk_size, onednn=True)):
        h, (C, n, m) = fn(q, k, v, i_pre, log_f, MLSTMCellState(C0, n0, m0))
        loss = (h * g).sum() + C.pow(2).sum() + n.sum()
        results.append([h, C, n, m, *torch.autograd.grad(loss, leaves)])
    for ours, ref in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(ours, ref, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("onednn", [False, True])
def test_without_gradients_one_memory_at_a_time_gives_the_same(onednn):
    """Under no_grad (inference, prefill) the scan keeps no stack of memories; outputs and the
    final memory equal the training path's, and the caller's initial memory is left as it was."""
    inputs = _inputs(5, M=4, L=8, K=6, V=6, dtype=torch.float32)
    with_grad = chunk_memory(*inputs, onednn=onednn)
    C0 = inputs[-1].detach().clone()
    with torch.no_grad():
        without = chunk_memory(*(t.detach() for t in inputs), onednn=onednn)
    assert without[0].grad_fn is None
    for a, b in zip(without, with_grad, strict=True):
        torch.testing.assert_close(a, b.detach())
    torch.testing.assert_close(inputs[-1].detach(), C0, rtol=0, atol=0)
