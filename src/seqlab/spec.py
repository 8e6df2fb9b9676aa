"""The interface between a task and a model, known to both (so neither imports the other)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IOSpec:
    """What a task feeds a model and what it expects back, per time step.

    Attributes:
        vocab_size: inputs are token ids in [0, vocab_size) — or None for real-valued inputs.
        input_dim: width of real-valued inputs (B, T, input_dim) when ``vocab_size`` is None.
        output_dim: width of the model's per-step output (classes, vocabulary or regression targets).
        source_vocab_size: for sequence-to-sequence tasks, the vocabulary of the source sequence
            the decoder is conditioned on (the batch carries ``source`` and ``source_mask``).
        shared_vocab: source and target are one vocabulary (one tokenizer), so an encoder-decoder
            can share their embedding table.
        vocab: each input token as a plain word (``Tokenizer.words``: markers such as BPE's ``Ġ``
            removed), in id order, when the task has a tokenizer; entries may repeat or be ``''``.
            Subword, CharNgram and pretrained embeddings need them. Not compared.
    """

    output_dim: int
    vocab_size: int | None = None
    input_dim: int | None = None
    source_vocab_size: int | None = None
    shared_vocab: bool = False
    vocab: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.vocab_size is None) == (self.input_dim is None):
            raise ValueError("IOSpec needs exactly one of vocab_size (tokens) or input_dim (features)")
        if self.vocab is not None and len(self.vocab) != self.vocab_size:
            raise ValueError(
                f"IOSpec: vocab lists {len(self.vocab)} tokens but vocab_size is {self.vocab_size}"
            )

    @property
    def is_language_model(self) -> bool:
        """Tokens in, a distribution over the same vocabulary out: generation makes sense."""
        return self.vocab_size is not None and self.vocab_size == self.output_dim

    @property
    def is_seq2seq(self) -> bool:
        """Batches carry a source sequence to encode besides the decoder's inputs."""
        return self.source_vocab_size is not None
