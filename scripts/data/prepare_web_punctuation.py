"""Prepare ``src/seqlab/data/builtin/web_punctuation.tsv.xz``: punctuation tags on the World English Bible.

Source (Debian, public domain): ``sword-text-web`` (module ``engWEB2015eb``, the World English
Bible, a modern-English translation), a SWORD zText module read with the reader of
``prepare_translation.py``::

    cd /tmp/sword && apt-get download sword-text-web && dpkg-deb -x sword-text-web_*.deb root
    python scripts/data/prepare_web_punctuation.py /tmp/sword/root/usr/share/sword

Each verse of the 66 books of the Protestant canon (the module's deuterocanon is skipped)
becomes one tagged sentence: its words, lower-cased, each tagged with the punctuation mark
written **before** it — the punctuation-restoration task in the form a left-to-right model can
learn (Tilk & Alumäe 2015 predict the mark before the current word for the same reason):

    , : — –      -> COMMA
    . ! ;        -> PERIOD
    ?            -> QUESTION
    (none)       -> O           (quotes, brackets and the verse's first word: O)

When one gap holds several marks the strongest wins (QUESTION > PERIOD > COMMA), e.g. ``?”``.
The mark after the verse's last word has no word to sit on and is dropped. A word is a run of
letters and digits, with inner apostrophes and hyphens (``don't``, ``burnt-offering``); curly
apostrophes become ``'``. Output, one verse per line::

    reference <TAB> words (space-separated) <TAB> tags (space-separated)
    Gen.1.1	in the beginning god created ...	O O O COMMA O ...
"""

from __future__ import annotations

import argparse
import configparser
import re
from pathlib import Path

from common import report, write_builtin
from prepare_translation import BOOK, CHAPTER, NOTE, osis_to_text, read_ztext

MODULE = "engWEB2015eb"
OUT = "web_punctuation.tsv.xz"
BOOKS = (  # the 66 books of the Protestant canon, in order
    "Gen Exod Lev Num Deut Josh Judg Ruth 1Sam 2Sam 1Kgs 2Kgs 1Chr 2Chr Ezra Neh Esth Job Ps Prov Eccl "
    "Song Isa Jer Lam Ezek Dan Hos Joel Amos Obad Jonah Mic Nah Hab Zeph Hag Zech Mal "
    "Matt Mark Luke John Acts Rom 1Cor 2Cor Gal Eph Phil Col 1Thess 2Thess 1Tim 2Tim Titus Phlm "
    "Heb Jas 1Pet 2Pet 1John 2John 3John Jude Rev"
)
CANON = BOOKS.split()
WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
MARKS = (("?", "QUESTION"), (".!;", "PERIOD"), (",:—–", "COMMA"))  # strongest first


def gap_tag(gap: str) -> str:
    """The tag of the text between two words: the strongest mark in it, or ``O``."""
    return next((tag for marks, tag in MARKS if any(m in gap for m in marks)), "O")


def tag_verse(text: str) -> tuple[list[str], list[str]]:
    """(lower-cased words, tags) of one verse's plain text; see the module docstring."""
    words, tags, end = [], [], 0
    for match in WORD.finditer(text):
        words.append(match.group().replace("’", "'").lower())
        tags.append(gap_tag(text[end : match.start()]) if words[1:] else "O")
        end = match.end()
    return words, tags


def verses(folder: Path) -> list[tuple[str, str]]:
    """(``Book.chapter.verse``, plain text) of every non-empty verse of the canonical books."""
    out, book, chapter, verse = [], "", 0, 0
    for testament in ("ot", "nt"):
        for entry in read_ztext(folder, testament)[2:]:
            if BOOK.search(entry):
                book, chapter = "", 0
            elif match := CHAPTER.search(entry):  # the chapter names its book (the module's book
                book, chapter, verse = match.group(1), int(match.group(2)), 0  # headings can lag)
            elif book in CANON and chapter:
                verse += 1
                # a footnote can sit between two words with no space around it: keep one
                text = osis_to_text(NOTE.sub(" ", entry))
                if text:
                    out.append((f"{book}.{chapter}.{verse}", text))
    return out


def module_dir(roots: list[Path], module: str) -> Path:
    """The module's data folder from ``mods.d/<module>.conf`` (any versification: books are named)."""
    confs = [
        p for root in roots for p in (root / "mods.d").glob("*.conf") if p.stem.lower() == module.lower()
    ]
    if not confs:
        raise SystemExit(f"no mods.d/{module.lower()}.conf under {', '.join(map(str, roots))}")
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.read(confs[0], encoding="utf-8")
    section = conf[module]
    for key, value in {"ModDrv": "zText", "CompressType": "ZIP", "SourceType": "OSIS"}.items():
        if section.get(key, "").strip() != value:
            raise SystemExit(f"{module}: {key}={section.get(key)!r}, this reader needs {value}")
    return confs[0].parent.parent / section["DataPath"].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("sword_root", type=Path, nargs="+", help="folder(s) holding mods.d/")
    args = parser.parse_args()
    rows = []
    for ref, text in verses(module_dir(args.sword_root, MODULE)):
        words, tags = tag_verse(text)
        if words:
            rows.append(f"{ref}\t{' '.join(words)}\t{' '.join(tags)}\n")
    books = {row.split(".", 1)[0] for row in rows}
    if books != set(CANON):
        raise SystemExit(f"expected the 66 canonical books, found {len(books)}: missing {set(CANON) - books}")
    text = "".join(rows)
    print(report(write_builtin(OUT, text), text, f"{len(rows):,} verses"))


if __name__ == "__main__":
    main()
