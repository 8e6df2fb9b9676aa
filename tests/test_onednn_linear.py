"""use_onednn_linear: a whole model's linear layers on oneDNN, same outputs, gradients and keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqlab.evaluation.measure import build_lm
from seqlab.layers import OneDNNLinear, use_onednn_linear, use_torch_linear
from seqlab.ops.gemm import linear, onednn


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
