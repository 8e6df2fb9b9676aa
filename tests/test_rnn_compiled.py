"""backend="compiled" (the C++ LSTM time loop and BPTT) against the naive reference, and its fallback.

The extension is built once per session (~1 min on 2 cores without a cache, then reused from
~/.cache/seqlab/extensions); if it cannot be built here, the parity tests skip with the reason
and the fallback tests still run.
"""

from __future__ import annotations

import sys
import warnings

import pytest
import torch

import seqlab.nn as snn
from checks import GuardedMemory, built_or_skip
from seqlab.errors import ConfigError
from seqlab.nn import _rnn_loop
from seqlab.ops import extension
from seqlab.ops.rnn import compiled_lstm

B, T, D, H = 4, 7, 5, 6
VARIANTS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "rec_dropout": {"recurrent_dropout": 0.3},
    "both": {"layer_norm": True, "recurrent_dropout": 0.3},
}


@pytest.fixture(scope="module")
def ext():
    return built_or_skip(compiled_lstm.load_extension, compiled_lstm._STATE)


def _pair(kw: dict, dtype=torch.float64, **extra):
    """A naive and a compiled LSTM with identical, non-trivial parameters."""
    torch.manual_seed(0)
    naive = snn.LSTM(D, H, backend="naive", **kw, **extra).to(dtype)
    fast = snn.LSTM(D, H, backend="compiled", **kw, **extra).to(dtype)
    with torch.no_grad():  # gains away from 1 so the layer-norm gradients are exercised
        for name, p in naive.named_parameters():
            if name.startswith("ln_"):
                p.uniform_(0.5, 1.5)
    fast.load_state_dict(naive.state_dict())
    return naive, fast


def _run(m, x, hx, seed=7, **mask_kw):
    """Outputs, final state and gradients of every input and parameter for a random loss."""
    torch.manual_seed(seed)  # same dropout masks for both backends
    out, (h_n, c_n) = m(x, hx, **mask_kw)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (out, h_n, c_n)]
    loss = sum((t * w).sum() for t, w in zip((out, h_n, c_n), weights))
    inputs = [x, *hx, *m.parameters()]
    return [out, h_n, c_n, *torch.autograd.grad(loss, inputs)]


def _assert_same(a, b, atol=1e-10, rtol=1e-7):
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b)):
        torch.testing.assert_close(u, v, atol=atol, rtol=rtol, msg=lambda m, k=k: f"tensor {k}: {m}")


def _inputs(layers, bidir, dtype=torch.float64, t=T):
    LK = layers * (2 if bidir else 1)
    x = torch.randn(B, t, D, dtype=dtype, requires_grad=True)
    hx = tuple(torch.randn(LK, B, H, dtype=dtype, requires_grad=True) for _ in range(2))
    return x, hx


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
@pytest.mark.parametrize("padding", ["none", "lengths", "holes"])
def test_compiled_equals_naive(ext, variant, layers, bidir, padding):
    naive, fast = _pair(VARIANTS[variant], num_layers=layers, bidirectional=bidir, dropout=0.2)
    x, hx = _inputs(layers, bidir)
    mask_kw = {}
    if padding == "lengths":
        mask_kw = {"lengths": torch.tensor([T, 3, 1, 5])}
    elif padding == "holes":  # any mask, not only right padding; one row fully padded
        mask_kw = {"mask": torch.rand(B, T, generator=torch.Generator().manual_seed(3)) > 0.4}
        mask_kw["mask"][2] = False
    _assert_same(_run(naive.train(), x, hx, **mask_kw), _run(fast.train(), x, hx, **mask_kw))


@pytest.mark.parametrize("variant", VARIANTS)
def test_compiled_equals_naive_float32_and_eval(ext, variant):
    naive, fast = _pair(VARIANTS[variant], dtype=torch.float32)
    x = torch.randn(3, 40, D, requires_grad=True)
    hx = tuple(torch.randn(1, 3, H, requires_grad=True) for _ in range(2))
    for train in (True, False):  # float32 uses the polynomial exp: float tolerance
        a, b = _run(naive.train(train), x, hx), _run(fast.train(train), x, hx)
        _assert_same(a, b, atol=2e-5, rtol=1e-4)


def test_one_time_step_and_default_state(ext):
    naive, fast = _pair(VARIANTS["both"])
    x = torch.randn(B, 1, D, dtype=torch.float64, requires_grad=True)
    results = []
    for m in (naive, fast):
        torch.manual_seed(2)
        out, (h_n, c_n) = m(x)
        loss = (out * torch.arange(H, dtype=out.dtype)).sum() + c_n.sum()
        results.append([out, h_n, c_n, *torch.autograd.grad(loss, [x, *m.parameters()])])
    _assert_same(*results)


def test_plain_compiled_matches_torch_nn_lstm(ext):
    ref = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True).double()
    fast = snn.LSTM(D, H, num_layers=2, bidirectional=True, backend="compiled").double()
    fast.load_state_dict(ref.state_dict())
    x, hx = _inputs(2, True)
    _assert_same(_run(ref, x, hx), _run(fast, x, hx))


def test_gradcheck_of_the_compiled_function(ext):
    g = torch.Generator().manual_seed(0)
    t, b, h = 4, 2, 3

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    gx, h0, c0, w = rand(t, b, 4 * h), rand(b, h), rand(b, h), rand(4 * h, h)
    ln_hh, ln_c = rand(4 * h), (rand(h), rand(h))
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    drop = torch.tensor([[2.0, 0.0, 2.0], [2.0, 2.0, 0.0]], dtype=torch.float64)

    def f(gx, h0, c0, w, ln_hh, cw, cb):
        out, (h_n, c_n) = compiled_lstm.compiled_lstm(gx, h0, c0, w, mask, drop, True, ln_hh, (cw, cb))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(f, (gx, h0, c0, w, ln_hh, *ln_c))


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_with_the_input_layer_norm_inside(ext, bias):
    g = torch.Generator().manual_seed(1)
    t, b, h = 3, 2, 3

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    gx, h0, c0, w = rand(t, b, 4 * h), rand(b, h), rand(b, h), rand(4 * h, h)
    ln_hh, cw, cb, ln_ih = rand(4 * h), rand(h), rand(h), rand(4 * h)
    bb = rand(4 * h) if bias else None
    mask = torch.tensor([[True, False, True], [True, True, True]])

    def f(gx, h0, c0, w, ln_hh, cw, cb, ln_ih, *bb):
        out, (h_n, c_n) = compiled_lstm.compiled_lstm(
            gx, h0, c0, w, mask, None, False, ln_hh, (cw, cb), ln_ih=ln_ih, bias=bb[0] if bb else None
        )
        return out, h_n, c_n

    args = (gx, h0, c0, w, ln_hh, cw, cb, ln_ih, *([bb] if bias else []))
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("reverse", [False, True])
def test_input_layer_norm_inside_equals_outside(ext, reverse):
    """``ln_ih=γ, bias=b`` on the raw projection == passing ``LN(gx) γ + b`` as gx."""
    g = torch.Generator().manual_seed(2)
    t, b, h = 6, 3, 4

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

    gx, h0, c0, w = rand(t, b, 4 * h, scale=3.0), rand(b, h), rand(b, h), rand(4 * h, h)
    ln_hh, ln_c, ln_ih, bias = rand(4 * h), (rand(h), rand(h)), rand(4 * h), rand(4 * h)
    drop = torch.tensor([[2.0, 0.0, 2.0, 2.0]] * b, dtype=torch.float64)
    mask = torch.tensor([[True] * t, [True, True, False, True, True, False], [False] * t])
    leaves = [gx, h0, c0, w, ln_hh, *ln_c, ln_ih, bias]
    results = []
    for inside in (False, True):
        if inside:
            res = compiled_lstm.compiled_lstm(
                gx, h0, c0, w, mask, drop, reverse, ln_hh, ln_c, ln_ih=ln_ih, bias=bias
            )
        else:
            pre = torch.nn.functional.layer_norm(gx, (4 * h,), ln_ih) + bias
            res = compiled_lstm.compiled_lstm(pre, h0, c0, w, mask, drop, reverse, ln_hh, ln_c)
        out, (h_n, c_n) = res
        loss = (out * torch.linspace(-1, 1, h, dtype=out.dtype)).sum() + (h_n * c_n).sum()
        results.append([out, h_n, c_n, *torch.autograd.grad(loss, leaves)])
    _assert_same(*results)
    with pytest.raises(ValueError, match="bias only with ln_ih"):
        compiled_lstm.compiled_lstm(gx, h0, c0, w, bias=bias)
    with pytest.raises(ValueError, match="ln_ih needs"):
        compiled_lstm.compiled_lstm(gx, h0, c0, w, ln_ih=ln_ih)


def test_second_order_gradients_raise(ext):
    fast = snn.LSTM(D, H, backend="compiled", layer_norm=True).double()
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fast(x)[0].sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|not have been used in the graph"):
        torch.autograd.grad(g.sum(), fast.weight_hh_l0)


def test_output_can_be_modified_in_place(ext):
    fast = snn.LSTM(D, H, backend="compiled", recurrent_dropout=0.2)
    out, (h_n, _) = fast(torch.randn(1, T, D))
    (out.mul_(2).sum() + h_n.mul_(3).sum()).backward()
    assert fast.weight_hh_l0.grad is not None


# -- selection and fallback (no extension needed) ----------------------------------------------


def test_compiled_is_opt_in_and_lstm_only():
    assert snn.LSTM(D, H, layer_norm=True).backend == "naive"  # auto never triggers a build
    assert snn.LSTM(D, H, layer_norm=True, recurrent_dropout=0.2, backend="compiled").backend == "compiled"
    with pytest.raises(ConfigError, match="backend='compiled' supports LSTM without proj_size"):
        snn.LSTM(D, H, proj_size=2, backend="compiled")
    with pytest.raises(ConfigError, match="backend='compiled'"):
        snn.GRU(D, H, backend="compiled")
    with pytest.raises(ConfigError, match="'naive' or 'compiled'"):
        snn.LSTM(D, H, layer_norm=True, backend="torch")


def test_unsupported_inputs_run_the_python_path():
    x = torch.randn(B, T, D, dtype=torch.bfloat16)
    assert _rnn_loop.runtime_backend(snn.LSTM(D, H, backend="compiled", layer_norm=True), x) == "naive"
    assert _rnn_loop.runtime_backend(snn.LSTM(D, H, backend="compiled"), x) == "fused"


@pytest.mark.parametrize("variant", ["plain", "layer_norm", "both"])
def test_fallback_without_compiler_warns_once_and_gives_the_same_results(monkeypatch, variant):
    def no_compiler():
        raise RuntimeError("no C++ compiler ('c++' not found on PATH)")

    monkeypatch.setattr(compiled_lstm, "_build", no_compiler)
    monkeypatch.setitem(compiled_lstm._STATE, "module", None)
    monkeypatch.setitem(compiled_lstm._STATE, "error", None)
    naive, fast = _pair(VARIANTS[variant])
    x, hx = _inputs(1, False)
    with pytest.warns(RuntimeWarning, match="compiled LSTM backend is unavailable.*no C\\+\\+ compiler"):
        got = _run(fast.train(), x, hx, lengths=torch.tensor([T, 2, 5, 1]))
    assert _rnn_loop.runtime_backend(fast, x) == ("naive" if fast.layer_norm else "fused")
    _assert_same(_run(naive.train(), x, hx, lengths=torch.tensor([T, 2, 5, 1])), got)
    with warnings.catch_warnings():  # warned once: later calls are silent
        warnings.simplefilter("error")
        fast(x)


def test_extension_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLAB_EXTENSIONS_DIR", str(tmp_path / "a"))
    assert compiled_lstm.extension_dir().parent == tmp_path / "a"
    monkeypatch.delenv("SEQLAB_EXTENSIONS_DIR")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "b"))
    assert compiled_lstm.extension_dir().parent == tmp_path / "b" / "seqlab"


def test_ninja_next_to_the_interpreter_is_put_on_path(monkeypatch, tmp_path):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    monkeypatch.setattr(extension.sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", "/nowhere")
    assert not extension.add_venv_ninja_to_path()  # no ninja there: PATH untouched
    assert extension.os.environ["PATH"] == "/nowhere"
    ninja = bin_dir / "ninja"
    ninja.write_text("#!/bin/sh\n")
    ninja.chmod(0o755)
    assert extension.add_venv_ninja_to_path()
    assert extension.os.environ["PATH"].split(extension.os.pathsep) == [str(bin_dir), "/nowhere"]


def test_build_uses_the_venv_ninja_when_none_is_on_path(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ninja").write_text("#!/bin/sh\n")
    (bin_dir / "ninja").chmod(0o755)
    loaded = {}

    def fake_load(**kw):  # no real build: record what PATH the build would see
        loaded["path"] = extension.os.environ["PATH"]
        return "module"

    monkeypatch.setattr(extension.sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(extension.shutil, "which", lambda name, path=None: "/usr/bin/c++")
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: False)
    monkeypatch.setattr(cpp_extension, "load", fake_load)
    monkeypatch.setenv("SEQLAB_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setenv("PATH", "/nowhere")
    monkeypatch.delenv("SEQLAB_DISABLE_EXTENSIONS", raising=False)
    assert compiled_lstm._build() == "module"
    assert loaded["path"].startswith(str(bin_dir))
    monkeypatch.setattr(extension, "add_venv_ninja_to_path", lambda: False)
    with pytest.raises(RuntimeError, match="ninja is not installed"):
        compiled_lstm._build()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mmap/mprotect through glibc")
@pytest.mark.parametrize("variant", ["plain", "layer_norm", "ln_ih"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("at_end", [True, False])
def test_the_kernels_stay_inside_their_tensors(ext, variant, dtype, at_end):
    """Forward and BPTT, both directions, with a padding mask and recurrent dropout, on inputs
    (and an output gradient) that end or start exactly at an inaccessible page, odd sizes: no
    read outside a tensor."""
    torch.manual_seed(0)
    memory = GuardedMemory()
    try:
        g = lambda *shape: memory.copy(torch.randn(*shape, dtype=dtype), at_end)  # noqa: E731
        T, B, H = 7, 3, 5
        leaves = {"gx": g(T, B, 4 * H), "h0": g(B, H), "c0": g(B, H), "w_hh": g(4 * H, H)}
        if variant != "plain":
            leaves |= {"ln_hh": g(4 * H), "ln_cw": g(H), "ln_cb": g(H)}
        if variant == "ln_ih":
            leaves |= {"ln_ih": g(4 * H), "bias": g(4 * H)}
        for t in leaves.values():
            t.requires_grad_()
        mask = torch.ones(B, T, dtype=torch.bool)
        mask[1, 4:] = False
        mask = memory.copy(mask, at_end)
        drop = memory.copy((torch.rand(B, H) > 0.3).to(dtype) / 0.7, at_end)
        kw = dict(leaves)
        ln_c = (kw.pop("ln_cw"), kw.pop("ln_cb")) if variant != "plain" else None
        for reverse in (False, True):
            out, (h_n, c_n) = compiled_lstm.compiled_lstm(
                kw["gx"], kw["h0"], kw["c0"], kw["w_hh"], mask, drop, reverse, kw.get("ln_hh"), ln_c,
                ln_ih=kw.get("ln_ih"), bias=kw.get("bias"),
            )  # fmt: skip
            d_outs = (g(B, T, H), g(B, H), g(B, H))
            grads = torch.autograd.grad((out, h_n, c_n), list(leaves.values()), d_outs)
            assert all(torch.isfinite(x).all() for x in (out, h_n, c_n, *grads))
    finally:
        memory.close()


def test_a_changed_header_changes_the_build_flags(monkeypatch, tmp_path):
    """torch rebuilds an extension only when a listed source or a flag changes: the headers'
    hash is a define, so editing an included header rebuilds too."""
    from torch.utils import cpp_extension

    seen = []
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: seen.append(kw) or "module")
    monkeypatch.setattr(extension.shutil, "which", lambda name, path=None: "/usr/bin/c++")
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: True)
    monkeypatch.setenv("SEQLAB_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.delenv("SEQLAB_DISABLE_EXTENSIONS", raising=False)
    source, header = tmp_path / "a.cpp", tmp_path / "a.h"
    source.write_text('#include "a.h"\n')
    for text in ("#define X 1\n", "#define X 1\n", "#define X 2\n"):
        header.write_text(text)
        extension.build("demo", [source], [header])
    defines = [[f for f in kw["extra_cflags"] if f.startswith("-DSEQLAB_HEADERS_SHA1=")] for kw in seen]
    assert all(len(d) == 1 for d in defines)
    assert defines[0] == defines[1] != defines[2]
    assert seen[0]["sources"] == [str(source)]


# -- oneDNN linear and the buffer pool ----------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_equals_f_linear(bias, dtype, monkeypatch):
    monkeypatch.setattr("seqlab.ops.gemm.MIN_ROWS", 1)  # these few rows through oneDNN too
    monkeypatch.setattr("seqlab.ops.gemm.MIN_WEIGHT", 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, 7, generator=g, dtype=dtype).transpose(0, 1).requires_grad_()  # strided
    w = torch.randn(12, 7, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(12, generator=g, dtype=dtype, requires_grad=True) if bias else None
    dy = torch.randn(5, 9, 12, generator=g, dtype=dtype)
    results = []
    for f in (torch.nn.functional.linear, compiled_lstm.linear):
        y = f(x, w, b)
        results.append([y, *torch.autograd.grad((y * dy).sum(), [x, w] + ([b] if bias else []))])
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 0.0, "rtol": 0.0}
    _assert_same(*results, **tol)
    only_w = compiled_lstm.linear(x.detach(), w, b)  # gradients of a subset of the inputs
    (gw,) = torch.autograd.grad((only_w * dy).sum(), [w])
    torch.testing.assert_close(gw, results[0][2], **tol)


def test_reused_buffers_never_alias_live_tensors(ext):
    """A second call while the first one's outputs and graph live; then backward through both."""
    torch.manual_seed(0)
    fast = snn.LSTM(16, 64, backend="compiled", layer_norm=True).double()  # (T, B, 4H) > 1 MiB
    naive = snn.LSTM(16, 64, backend="naive", layer_norm=True).double()
    naive.load_state_dict(fast.state_dict())
    xs = [torch.randn(32, 40, 16, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    outs = [fast(x)[0] for x in xs]  # three graphs alive at once
    kept = [o.detach().clone() for o in outs]
    for x, o, k in zip(xs, outs, kept):
        torch.testing.assert_close(o, k, atol=0, rtol=0)
        ref_out = naive(x)[0]
        torch.testing.assert_close(o, ref_out, atol=1e-10, rtol=1e-7)
        (gx,) = torch.autograd.grad(o.sum(), x)
        (ref,) = torch.autograd.grad(ref_out.sum(), x)
        torch.testing.assert_close(gx, ref, atol=1e-10, rtol=1e-7)
        fast(torch.randn_like(x))  # reuses the freed buffers while later graphs still live
    assert compiled_lstm.release_buffers() >= 0
