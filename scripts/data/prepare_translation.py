"""Prepare ``src/seqlab/data/builtin/translation_en_es.tsv.xz``: English-Spanish Bible verse pairs.

Sources (Debian, public domain): ``sword-text-kjv`` (King James Version, 1769 text) and
``sword-text-sparv`` (Reina-Valera 1909), two SWORD zText modules that both use the KJV
versification, so entry *i* of one module is the same verse as entry *i* of the other::

    cd /tmp/sword && apt-get download sword-text-kjv sword-text-sparv
    for deb in sword-text-*.deb; do dpkg-deb -x "$deb" root; done
    python scripts/data/prepare_translation.py /tmp/sword/root/usr/share/sword

(or, with both packages installed, ``/usr/share/sword``).

Markup is stripped (footnotes and non-canonical headings dropped, Psalm superscriptions kept:
the Spanish text carries them inside verse 1), verses empty in either language are dropped,
and only pairs of at most ``--max-words`` English words are kept. Output:
``reference <TAB> english <TAB> spanish`` per line, e.g. ``Gen.1.1<TAB>In the beginning...``.

zText layout (what :func:`read_ztext` reads), per testament ``ot`` / ``nt``:

- ``<t>.bzs``: one 12-byte record per compressed block: offset, size, uncompressed size
  (three little-endian uint32) of the block inside ``<t>.bzz``;
- ``<t>.bzz``: the blocks, each zlib-compressed (``CompressType=ZIP``);
- ``<t>.bzv``: one 10-byte record per index entry: block number (uint32), offset in the
  uncompressed block (uint32), size (uint16); size 0 means an empty entry.

Index entries follow the versification: [0] empty, [1] testament heading, then per book a book
heading and per chapter a chapter heading followed by its verses.
"""

from __future__ import annotations

import argparse
import configparser
import html
import re
import struct
import zlib
from pathlib import Path

from common import report, write_builtin

MODULES = {"en": "engKJV2006eb", "es": "spaRV1909eb"}
KJV_VERSES = {"ot": 23145, "nt": 7957}  # verses of the KJV versification (66 books, 1,189 chapters)
OUT = "translation_en_es.tsv.xz"
# start milestones (sID) of a book / chapter; the end milestones (eID) close the previous verse
BOOK = re.compile(r'<div\b(?=[^>]*\btype="book")(?=[^>]*\bsID=)[^>]*\bosisID="([^"]+)"')
CHAPTER = re.compile(r'<chapter\b(?=[^>]*\bsID=)[^>]*\bosisID="([^".]+)\.(\d+)"')
NOTE = re.compile(r"<note\b.*?</note>", re.S)
HEADING = re.compile(r'<title\b(?![^>]*canonical="true")[^>]*>.*?</title>', re.S)
TAG = re.compile(r"<[^>]*>")
# Psalm 119's acrostic headings: a title in the KJV (dropped) but plain verse text in the RV 1909
ACROSTIC = re.compile(
    r"^(?:ALEPH|BETH|GIMEL|DALETH|HE|VAU|ZAIN|CHETH|TETH|JOD|CAPH|LAMED|MEM|NUN|SAMECH|AIN|PE|TZADDI"
    r"|COPH|RESH|SCHIN|SIN|TAU)\.? +"
)
USFM = re.compile(r"\\\+?[a-z]+\d?\*?")  # stray USFM markers left in a few KJV verses: "\nd ", "\+nd*"


def module_dir(roots: list[Path], module: str) -> Path:
    """The module's data folder, read from ``mods.d/<module>.conf``; checks the format is ours."""
    confs = [
        p for root in roots for p in (root / "mods.d").glob("*.conf") if p.stem.lower() == module.lower()
    ]
    if not confs:
        raise SystemExit(f"no mods.d/{module}.conf under {', '.join(map(str, roots))}")
    root = confs[0].parent.parent
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.read(confs[0], encoding="utf-8")
    section = conf[module]
    want = {"ModDrv": "zText", "CompressType": "ZIP", "Versification": "KJV", "SourceType": "OSIS"}
    for key, value in want.items():
        if section.get(key, "").strip() != value:
            raise SystemExit(f"{module}: {key}={section.get(key)!r}, this reader needs {value}")
    return root / section["DataPath"].strip()


def read_ztext(folder: Path, testament: str) -> list[str]:
    """Every index entry of one testament, as UTF-8 markup ('' for empty entries)."""
    bzs, bzv, bzz = (Path(folder, f"{testament}.{ext}").read_bytes() for ext in ("bzs", "bzv", "bzz"))
    blocks = list(struct.iter_unpack("<III", bzs))
    cache: dict[int, bytes] = {}
    entries = []
    for block, offset, size in struct.iter_unpack("<IIH", bzv):
        if size == 0:
            entries.append("")
            continue
        if block not in cache:
            start, length, plain = blocks[block]
            cache[block] = zlib.decompress(bzz[start : start + length])
            assert len(cache[block]) == plain, f"{folder}/{testament}: block {block} is damaged"
        entries.append(cache[block][offset : offset + size].decode("utf-8"))
    return entries


def references(entries: list[str], testament: str) -> list[str | None]:
    """``Book.chapter.verse`` for each verse entry, None for headings; checked against the KJV."""
    refs: list[str | None] = [None, None]
    book, chapter, verse = "", 0, 0
    for entry in entries[2:]:
        if match := BOOK.search(entry):
            book, chapter = match.group(1), 0
            refs.append(None)
        elif match := CHAPTER.search(entry):
            chapter, verse = int(match.group(2)), 0
            refs.append(None)
        else:
            verse += 1
            refs.append(f"{book}.{chapter}.{verse}")
    found = sum(r is not None for r in refs)
    if found != KJV_VERSES[testament]:
        raise SystemExit(
            f"{testament}: found {found} verses, the KJV versification has {KJV_VERSES[testament]}"
        )
    return refs


def osis_to_text(markup: str) -> str:
    """Plain text of one verse: notes and headings dropped, tags removed, spaces normalised."""
    text = HEADING.sub(" ", NOTE.sub("", markup))
    text = USFM.sub("", TAG.sub("", text)).replace("¶", " ")
    text = " ".join(html.unescape(text).split())
    return re.sub(r" ([,;:.?!)])", r"\1", text)


def aligned_pairs(roots: list[Path]) -> tuple[list[tuple[str, str, str]], int, int]:
    """(reference, english, spanish) for every verse both modules have; and the drop counts."""
    folders = {lang: module_dir(roots, module) for lang, module in MODULES.items()}
    pairs, verses, dropped = [], 0, 0
    for testament in ("ot", "nt"):
        en, es = (read_ztext(folders[lang], testament) for lang in ("en", "es"))
        if len(en) != len(es):
            raise SystemExit(f"{testament}: {len(en)} English entries but {len(es)} Spanish ones")
        refs = references(en, testament)
        if references(es, testament) != refs:
            raise SystemExit(f"{testament}: the two modules' books and chapters do not line up")
        for ref, en_markup, es_markup in zip(refs, en, es):
            if ref is None:
                continue
            verses += 1
            source, target = osis_to_text(en_markup), osis_to_text(es_markup)
            if ref.startswith("Ps.119."):
                target = ACROSTIC.sub("", target)
            if source and target:
                pairs.append((ref, source, target))
            else:
                dropped += 1
    return pairs, verses, dropped


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("roots", type=Path, nargs="+", help="SWORD root(s) holding mods.d/ and modules/")
    parser.add_argument(
        "--max-words", type=int, default=30, help="keep pairs of at most this many English words"
    )
    args = parser.parse_args()
    pairs, verses, dropped = aligned_pairs(args.roots)
    kept = [p for p in pairs if len(p[1].split()) <= args.max_words]
    for ref, source, target in kept:
        assert not any(c in "<>\\\t\n" for c in source + target), f"{ref}: markup left: {source} | {target}"
    content = "".join(f"{ref}\t{source}\t{target}\n" for ref, source, target in kept)
    what = f"{verses:,} verses, {dropped} empty dropped, {len(kept):,} of {len(pairs):,} pairs with "
    what += f"<= {args.max_words} English words"
    print(report(write_builtin(OUT, content), content, what))


if __name__ == "__main__":
    main()
