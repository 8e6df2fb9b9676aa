"""What a study's report shows of its trained models: samples, attention maps, forecasts.

Shape legend: B batch · T time · H heads · W forecast windows · Hz horizon · C channels.

Each function loads one finished run (:func:`seqlab.training.rundir.load_trained`) and returns
plain JSON-able data; the report draws it. All are deterministic (fixed seeds, fixed inputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqlab.errors import SeqlabError

SAMPLE_PROMPT = "ROMEO:"


def lm_sample(run: Path, n: int = 240, temperature: float = 0.8, seed: int = 0) -> dict[str, Any]:
    """``n`` sampled tokens after ``SAMPLE_PROMPT`` (a newline where the vocabulary lacks it)."""
    from seqlab.data import load_tokenizer
    from seqlab.training.rundir import load_trained

    trained = load_trained(run)
    tokenizer = load_tokenizer(run / "tokenizer.json")
    prompt = SAMPLE_PROMPT
    try:
        ids = tokenizer.encode(prompt)
    except (SeqlabError, KeyError, ValueError):
        prompt, ids = "\n", tokenizer.encode("\n")
    generator = torch.Generator().manual_seed(seed)
    out = trained.model.generate(torch.tensor([ids]), n, temperature, None, None, generator)
    return {
        "prompt": prompt,
        "text": tokenizer.decode(out[0].tolist()),
        "temperature": temperature,
        "seed": seed,
    }


def attention_maps(run: Path, length: int = 48) -> dict[str, Any] | None:
    """The attention weights of every attention block of an LM run on the first ``length``
    tokens of its validation text: ``{"tokens": [T strings], "blocks": {index: [H][T][T]}}``;
    None when the model has no attention block."""
    from seqlab.data import load_tokenizer
    from seqlab.mixers.attention import AttentionMixer
    from seqlab.training.rundir import load_trained

    trained = load_trained(run)
    model = trained.model
    mixers = {i: b.mixer for i, b in enumerate(model.blocks) if isinstance(b.mixer, AttentionMixer)}
    if not mixers:
        return None
    ids = _validation_tokens(trained.task, length)  # (1, T)
    inputs: dict[int, torch.Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda _m, args, i=i: inputs.__setitem__(i, args[0].detach()))
        for i, m in mixers.items()
    ]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    tokenizer = load_tokenizer(run / "tokenizer.json")
    tokens = [tokenizer.decode([t]) for t in ids[0].tolist()]
    weights = {str(i): m.attention_weights(inputs[i])[0].tolist() for i, m in mixers.items()}  # (H, T, T)
    return {"tokens": tokens, "blocks": weights}


def _validation_tokens(task: Any, length: int) -> torch.Tensor:
    """The first ``length`` tokens of a language-model task's validation text, (1, T)."""
    data = getattr(task, "val_data", None)
    if data is None:
        raise SeqlabError(f"task {type(task).__name__} has no validation text to show attention on")
    return data[:length][None].long()


def forecast_curves(run: Path) -> dict[str, Any]:
    """The test split's actual values and the run's forecasts from origins ``horizon`` apart
    (each forecast covers the ``horizon`` points after its origin; together they tile the split),
    first channel, original units: ``{"actual", "forecast", "naive", "start", "horizon"}``."""
    from seqlab.evaluation.forecast_baselines import seasonal_naive_forecasts
    from seqlab.training.evaluation import Predictor
    from seqlab.training.rundir import load_trained

    trained = load_trained(run)
    task = trained.task
    horizon = task.horizon
    origins = task.origins("test")[::horizon]  # (W,)
    if len(origins) == 0:
        raise SeqlabError(f"{run}: the test split is shorter than one forecast")
    with torch.no_grad():
        pred = task.forecast(Predictor(trained.model), origins, 64)  # (W, Hz, C)
    naive = seasonal_naive_forecasts(task.data.values, origins, horizon, task.season)  # (W, Hz, C)
    start, stop = int(origins[0]), int(origins[-1]) + horizon
    return {
        "start": start,
        "horizon": horizon,
        "actual": task.data.values[start:stop, 0].tolist(),
        "forecast": pred[:, :, 0].reshape(-1).tolist(),
        "naive": naive[:, :, 0].reshape(-1).tolist(),
    }
