"""Small labelled tables several test files share (classify, condlm)."""

from __future__ import annotations

POSITIVE = ["a great film", "wonderful and moving", "great acting , great story", "i loved it", "superb"]
NEGATIVE = ["a dull film", "boring and far too long", "terrible acting", "i hated it", "awful , awful"]


def write_sentiment_csv(path, n=120):
    """A small, learnable table (columns review, sentiment): positive texts say great/loved,
    negative ones dull/hated; row i is positive when i is odd."""
    rows = ["review,sentiment"]
    for i in range(n):
        text = (POSITIVE if i % 2 else NEGATIVE)[i % 5] + f" number {i}"
        rows.append(f'"{text}",{"pos" if i % 2 else "neg"}')
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
