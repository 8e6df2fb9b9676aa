"""Mini-batching of variable-length sequences: padding, length bucketing, token budgets.

Shape legend: N dataset size · B batch · T time (the longest sequence of a batch).

A batch of sequences is padded to its longest member, so a batch costs ``B · T_max`` token
slots of compute and memory whatever the real lengths are. Grouping sequences of similar
length (bucketing) keeps ``T_max`` close to every member's length, and a *token budget*
(``B · T_max ≤ max_tokens``) keeps the cost of every batch about the same, with many short
sequences or few long ones per batch (Ott et al. 2018, fairseq's ``--max-tokens``).

Example — ten sequences, a budget of 8 padded tokens per batch::

    >>> lengths = torch.tensor([1, 7, 2, 2, 8, 3, 1, 4, 4, 2])
    >>> [b.tolist() for b in bucket_batches(lengths, max_tokens=8, shuffle=False)]
    [[0, 6, 2, 3], [9, 5], [7, 8], [1], [4]]
    >>> round(padding_fraction(lengths, bucket_batches(lengths, max_tokens=8, shuffle=False)), 3)
    0.081

The first batch holds lengths (1, 1, 2, 2): ``4 · 2 = 8`` slots for 6 real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from seqlab.errors import ConfigError

__all__ = ["bucket_batches", "pad_sequences", "padded_tokens", "padding_fraction", "random_batches"]


def pad_sequences(sequences: Sequence[Tensor], pad_value: int | float = 0) -> tuple[Tensor, Tensor]:
    """Right-pad 1-D tensors to a (B, T) tensor and a (B, T) bool mask of the real positions.

    Args:
        sequences: B tensors of shape (n_b,), one dtype; T = max n_b (an empty sequence is allowed).
        pad_value: the value written at padded positions.

    Returns:
        (padded (B, T), mask (B, T) bool, True at real tokens).

    Example::

        >>> x, mask = pad_sequences([torch.tensor([5, 6, 7]), torch.tensor([8])], pad_value=-1)
        >>> x.tolist(), mask.tolist()
        ([[5, 6, 7], [8, -1, -1]], [[True, True, True], [True, False, False]])
    """
    if not sequences:
        raise ConfigError("pad_sequences: expected at least one sequence, got none")
    if any(s.dim() != 1 for s in sequences):
        raise ConfigError("pad_sequences: expected 1-D tensors (one sequence each)")
    padded = torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True, padding_value=pad_value)
    lengths = torch.tensor([len(s) for s in sequences])
    mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]  # (B, T)
    return padded, mask


def bucket_batches(
    lengths: Tensor,
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    bucket_width: int | None = None,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """Split dataset indices into batches of sequences of similar length (one epoch).

    Steps: 1. order the indices by length — globally (``bucket_width=None``: sort, then chunk),
    or by bucket ``⌊n / bucket_width⌋`` with a random order inside each bucket, so batches differ
    from epoch to epoch (then batches never mix buckets); 2. cut the order into consecutive
    batches of at most ``batch_size`` items and at most ``max_tokens`` padded tokens,
    ``len(batch) · max(n in batch) ≤ max_tokens``; 3. with ``shuffle``, shuffle the order of
    the batches, so an epoch does not run from short to long. Every index lands in exactly one
    batch. The result depends only on ``lengths`` and the generator's state.

    Args:
        lengths: (N,) sequence lengths (padded tokens each sequence costs: e.g. source +
            target length for a translation pair).
        batch_size: most sequences per batch. At least one of ``batch_size`` / ``max_tokens``.
        max_tokens: most padded tokens ``B · T_max`` per batch. A sequence longer than the
            budget cannot be batched at all: it raises :class:`~seqlab.errors.ConfigError`
            (naming it) rather than silently exceeding the budget — filter such sequences first.
        bucket_width: width of the length buckets; None sorts globally (least padding, but the
            same batches every epoch up to ties).
        shuffle: shuffle ties/bucket members and the order of batches (needs ``generator``);
            False gives batches in ascending length, deterministically.
        generator: the source of randomness (no global RNG).

    Returns:
        A list of (B_i,) long tensors of indices into ``lengths``.

    Example::

        >>> lengths = torch.tensor([3, 1, 2, 3, 1, 2])
        >>> [b.tolist() for b in bucket_batches(lengths, batch_size=2, shuffle=False)]
        [[1, 4], [2, 5], [0, 3]]
        >>> [b.tolist() for b in bucket_batches(lengths, max_tokens=5, shuffle=False)]
        [[1, 4], [2, 5], [0], [3]]
    """
    _check_batching(lengths, batch_size, max_tokens, bucket_width, shuffle, generator)
    # 1. order: random first (breaks ties / mixes buckets), then a stable sort by the key
    N = len(lengths)
    order = torch.randperm(N, generator=generator) if shuffle else torch.arange(N)
    keys = lengths if bucket_width is None else torch.div(lengths, bucket_width, rounding_mode="floor")
    order = order[torch.sort(keys[order], stable=True).indices]
    # 2. chunk the ordered indices under both limits
    sorted_keys = keys[order].tolist() if bucket_width is not None else None
    bounds = _chunk(lengths[order].tolist(), sorted_keys, batch_size, max_tokens)
    batches = [order[start:stop] for start, stop in bounds]
    # 3. shuffle the order of the batches
    if shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def _check_batching(
    lengths: Tensor,
    batch_size: int | None,
    max_tokens: int | None,
    bucket_width: int | None,
    shuffle: bool,
    generator: torch.Generator | None,
) -> None:
    if lengths.dim() != 1 or lengths.dtype.is_floating_point:
        raise ConfigError(
            f"lengths: expected a 1-D integer tensor, got {lengths.dtype} {tuple(lengths.shape)}"
        )
    if batch_size is None and max_tokens is None:
        raise ConfigError("bucket_batches: give batch_size, max_tokens or both")
    limits = {"batch_size": batch_size, "max_tokens": max_tokens, "bucket_width": bucket_width}
    for name, value in limits.items():
        if value is not None and value <= 0:
            raise ConfigError(f"{name}: expected a positive integer, got {value}")
    if shuffle and generator is None:
        raise ConfigError("bucket_batches: shuffle=True needs a torch.Generator (no global RNG)")
    if max_tokens is not None and len(lengths) and int(lengths.max()) > max_tokens:
        i = int(lengths.argmax())
        raise ConfigError(
            f"max_tokens={max_tokens} is smaller than sequence {i} ({int(lengths[i])} tokens); "
            "raise max_tokens or drop the sequences longer than it"
        )


def _chunk(
    lengths: list[int], keys: list[int] | None, batch_size: int | None, max_tokens: int | None
) -> list[tuple[int, int]]:
    """Greedy [start, stop) bounds over length-ordered items; a new batch starts when the next
    item would break a limit or (with ``keys``) enter another bucket."""
    bounds, start, longest = [], 0, 0
    for i, n in enumerate(lengths):
        longest_with = max(longest, n)
        full = (
            (batch_size is not None and i - start + 1 > batch_size)
            or (max_tokens is not None and (i - start + 1) * longest_with > max_tokens)
            or (keys is not None and i > start and keys[i] != keys[start])
        )
        if full and i > start:
            bounds.append((start, i))
            start, longest_with = i, n
        longest = longest_with
    if lengths:
        bounds.append((start, len(lengths)))
    return bounds


def random_batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """Indices 0..n-1 in random order, cut into batches of ``batch_size`` (the last may be short).

    The baseline :func:`bucket_batches` is compared with::

        >>> [b.tolist() for b in random_batches(5, 2, torch.Generator().manual_seed(0))]
        [[4, 0], [1, 3], [2]]
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size: expected a positive integer, got {batch_size}")
    return list(torch.randperm(n, generator=generator).split(batch_size))


def padded_tokens(lengths: Tensor, batch: Tensor) -> int:
    """Token slots a batch of indices costs once padded: ``B · max(n)``."""
    return len(batch) * int(lengths[batch].max()) if len(batch) else 0


def padding_fraction(lengths: Tensor, batches: Sequence[Tensor]) -> float:
    """Fraction of the padded token slots that are padding, over all batches.

    ``1 − Σ_i n_i / Σ_b B_b · T_b``: 0 when every batch holds equal lengths. For lengths uniform
    on 1..200 in random batches of 32 it is about 0.5 (each batch pads to ≈ 200, the mean is
    ≈ 100); sorted into batches it falls below 0.05 (``tests/test_batching.py`` measures both).

    Example::

        >>> lengths, batches = torch.tensor([1, 3, 2, 2]), [torch.tensor([0, 1]), torch.tensor([2, 3])]
        >>> round(padding_fraction(lengths, batches), 3)  # (1 + 3 + 2 + 2) real of 2·3 + 2·2 slots
        0.2
    """
    real = sum(int(lengths[b].sum()) for b in batches)
    slots = sum(padded_tokens(lengths, b) for b in batches)
    return 1.0 - real / slots if slots else 0.0


def length_buckets(lengths: Tensor, num_buckets: int) -> tuple[Tensor, np.ndarray]:
    """(indices sorted by length, bucket bounds [0, ..., N]): ≤ num_buckets near-equal buckets.

    Example: lengths [5, 1, 3, 2], 2 buckets → order [1, 3, 2, 0], bounds [0, 2, 4] — the two
    shortest sequences in one bucket, the two longest in the other.
    """
    order = torch.sort(lengths, stable=True).indices
    N = len(order)
    bounds = np.unique(np.linspace(0, N, min(num_buckets, N) + 1).round().astype(int))
    return order, bounds


def draw_from_a_bucket(
    buckets: tuple[Tensor, np.ndarray], lengths: Tensor, max_tokens: int, generator: torch.Generator
) -> Tensor:
    """(B,) indices of one length-bucketed batch with ``B · (longest of the bucket) ≤ max_tokens``.

    ``buckets`` = :func:`length_buckets` (order, bounds). 1. draw one item uniformly and take its
    bucket k; 2. B = max_tokens // (longest item of bucket k); 3. draw B items uniformly from
    bucket k. P(bucket k) = n_k / N and P(item | k) = 1 / n_k, so every item is drawn with
    probability 1 / N — as uniform sampling would — while a batch pads only to its bucket's longest.
    """
    order, bounds = buckets
    i = int(torch.randint(0, len(order), (1,), generator=generator))
    k = int(np.searchsorted(bounds, i, side="right")) - 1  # bucket of the i-th shortest item
    members = order[bounds[k] : bounds[k + 1]]
    B = max_tokens // int(lengths[members].max())
    return members[torch.randint(0, len(members), (B,), generator=generator)]
