"""Prepare ``src/seqlab/data/builtin/movie_reviews.tsv.xz``: rated movie-review sentences.

Source: ``additional_resources/hutto_ICWSM_2014.tar.gz`` inside the vaderSentiment 3.3.2
source distribution (MIT; the wheel does not carry it), file
``movieReviewSnippets_GroundTruth.txt``: 10,605 sentences of Pang & Lee's sentence-polarity
data, each with the mean of human valence ratings in [-4, 4] (Hutto & Gilbert, 2014)::

    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d /tmp/vader
    python scripts/data/prepare_movie_reviews.py /tmp/vader/vaderSentiment-3.3.2.tar.gz

Written unchanged but for line endings (CRLF -> LF): ``id <TAB> valence <TAB> sentence``, one
row per line, every row kept. The ``movie-reviews`` dataset makes labels (sign of the valence),
drops the zero-valence rows and duplicate sentences, and splits.
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from common import report, sha256, write_builtin

INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
OUT = "movie_reviews.tsv.xz"


def read_snippets(sdist: Path) -> str:
    """The ground-truth file's text, read from the sdist without unpacking it to disk."""
    with tarfile.open(sdist) as outer:
        inner_name = next(n for n in outer.getnames() if n.endswith(INNER))
        inner_bytes = outer.extractfile(inner_name).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        return inner.extractfile(MEMBER).read().decode("utf-8")


def check_rows(text: str) -> list[str]:
    """The rows, each checked to be ``id<TAB>float<TAB>non-empty text`` (else the script stops)."""
    rows = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    for number, row in enumerate(rows, 1):
        fields = row.split("\t")
        if len(fields) != 3 or not fields[2].strip():
            raise SystemExit(f"{MEMBER}:{number}: expected id, valence, text; got {row[:80]!r}")
        float(fields[1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sdist", type=Path, help="vaderSentiment-3.3.2.tar.gz")
    args = parser.parse_args()
    print(f"{args.sdist.name} sha256 {sha256(args.sdist)}")
    rows = check_rows(read_snippets(args.sdist))
    content = "\n".join(rows) + "\n"
    valences = [float(row.split("\t")[1]) for row in rows]
    counts = f"{sum(v > 0 for v in valences)} positive, {sum(v < 0 for v in valences)} negative, "
    counts += f"{sum(v == 0 for v in valences)} zero"
    print(report(write_builtin(OUT, content), content, f"{len(rows):,} rows: {counts}"))


if __name__ == "__main__":
    main()
