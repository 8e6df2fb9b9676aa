"""AttentionMixer.attention_weights: the probabilities forward uses, for reports' heatmaps."""

from __future__ import annotations

import pytest
import torch

from seqlab.mixers.attention import AttentionConfig, AttentionMixer


@pytest.mark.parametrize(
    "options",
    [{}, {"window": 3}, {"positional": "alibi"}, {"num_kv_heads": 2}, {"positional": "none"}],
    ids=["rope", "window", "alibi", "gqa", "no-positions"],
)
def test_weights_rebuild_the_forward_output(options: dict) -> None:
    torch.manual_seed(0)
    mixer = AttentionMixer(16, AttentionConfig(num_heads=4, **options)).eval()
    x = torch.randn(2, 7, 16)
    w = mixer.attention_weights(x)  # (B, H, T, T)
    assert w.shape == (2, 4, 7, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 7))
    assert (w.triu(1) == 0).all()  # causal: nothing from the future
    if "window" in options:  # nothing from 3 or more steps back
        assert (w.tril(-3) == 0).all()
    # y = out(W v), the same as forward's
    _, _, v = mixer._project(x)
    v = v.repeat_interleave(4 // v.shape[1], dim=1)  # (B, H, T, K)
    y = mixer.out((w @ v).transpose(1, 2).reshape(2, 7, 16))
    torch.testing.assert_close(y, mixer(x)[0], atol=1e-5, rtol=1e-5)


def test_first_token_attends_to_itself() -> None:
    mixer = AttentionMixer(8, AttentionConfig(num_heads=2))
    w = mixer.attention_weights(torch.randn(1, 4, 8))
    assert torch.equal(w[0, :, 0, 0], torch.ones(2))
