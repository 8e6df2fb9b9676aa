"""use_onednn_linear: a whole model's linear layers on oneDNN, same outputs, gradients and keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.evaluation.measure import build_lm
from seqlab.layers import OneDNNLinear, use_onednn_linear, use_torch_linear
from seqlab.ops.gemm import linear, onednn


@pytest.fixture(autouse=True)
def _small_products_through_onednn(monkeypatch):
    """The tests' products are small: send them through oneDNN all the same."""
    monkeypatch.setattr("seqlab.ops.gemm.MIN_ROWS", 1)
    monkeypatch.setattr("seqlab.ops.gemm.MIN_WEIGHT", 1)


def _loss_and_grads(lm, x, y):
    lm.zero_grad(set_to_none=True)
    logits = lm(x)[0]
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    return logits.detach(), {n: p.grad.clone() for n, p in lm.named_parameters()}


def test_a_transformer_lm_gives_the_same_outputs_and_gradients():
    lm = build_lm("transformer", ["model.d_model=32", "model.d_ff=64"])
    keys = list(lm.state_dict())
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 64, (3, 11), generator=g), torch.randint(0, 64, (3, 11), generator=g)
    ref_out, ref_grads = _loss_and_grads(lm, x, y)
    use_onednn_linear(lm)
    assert any(type(m) is OneDNNLinear for m in lm.modules()) and list(lm.state_dict()) == keys
    out, grads = _loss_and_grads(lm, x, y)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    use_torch_linear(lm)
    assert not any(type(m) is OneDNNLinear for m in lm.modules())


def test_linear_falls_back_where_onednn_does_not_apply():
    x64, w64 = torch.randn(4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    assert not onednn(x64)
    torch.testing.assert_close(linear(x64, w64), x64 @ w64.T)  # float64: F.linear itself
    x = torch.randn(2, 6, 3, requires_grad=True)  # a 3-D input: leading dimensions kept
    w, b = torch.randn(5, 3, requires_grad=True), torch.randn(5, requires_grad=True)
    out = linear(x, w, b)
    assert out.shape == (2, 6, 5)
    torch.testing.assert_close(out, F.linear(x, w, b), atol=1e-5, rtol=1e-5)


def test_a_broadcast_gradient_gives_the_same_weight_gradient():
    """``.sum().backward()`` hands the op a stride-0 gradient (oneDNN's slow reference kernel
    unless made contiguous first); the gradients equal F.linear's."""
    x = torch.randn(64, 8, requires_grad=True)
    w = torch.randn(5, 8, requires_grad=True)
    grads = torch.autograd.grad(linear(x, w).sum(), (x, w))
    refs = torch.autograd.grad(F.linear(x, w).sum(), (x, w))
    for a, b in zip(grads, refs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_small_products_autocast_and_float64_are_f_linear_itself(monkeypatch):
    """Below MIN_ROWS rows (a decoding step) or MIN_WEIGHT weight entries (a tiny layer), under
    autocast and in float64 no oneDNN function is on the graph; at both minimums it is."""
    monkeypatch.setattr("seqlab.ops.gemm.MIN_ROWS", 8)
    monkeypatch.setattr("seqlab.ops.gemm.MIN_WEIGHT", 15)
    w = torch.randn(5, 3, requires_grad=True)
    assert type(linear(torch.randn(2, 3, 3), w).grad_fn).__name__ != "_OneDNNLinearBackward"
    assert type(linear(torch.randn(2, 4, 3), w).grad_fn).__name__ == "_OneDNNLinearBackward"
    small = torch.randn(4, 3, requires_grad=True)  # 12 < 15 entries
    assert type(linear(torch.randn(2, 4, 3), small).grad_fn).__name__ != "_OneDNNLinearBackward"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear(torch.randn(2, 4, 3), w).dtype == torch.bfloat16
    x64 = torch.randn(8, 3, dtype=torch.float64)
    assert type(linear(x64, w.double()).grad_fn).__name__ != "_OneDNNLinearBackward"


@pytest.mark.parametrize(("features_in", "features_out"), [(12, 5), (5, 12), (7, 7)])
def test_weight_gradient_whichever_operand_is_transposed(features_in, features_out):
    """δw = δyᵀ x is formed with the operand of fewer columns transposed: both ways (more inputs
    than outputs, fewer, equal) give F.linear's gradients."""
    torch.manual_seed(0)
    x = torch.randn(40, features_in, requires_grad=True)
    w = torch.randn(features_out, features_in, requires_grad=True)
    b = torch.randn(features_out, requires_grad=True)
    g = torch.randn(40, features_out)
    if not onednn(x):
        pytest.skip("this torch has no oneDNN linear")
    out = linear(x, w, b)
    assert type(out.grad_fn).__name__ == "_OneDNNLinearBackward"
    grads = torch.autograd.grad(out, (x, w, b), g)
    refs = torch.autograd.grad(F.linear(x, w, b), (x, w, b), g)
    for a, r in zip(grads, refs, strict=True):
        torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-5)
