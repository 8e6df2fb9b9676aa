"""Load an HTML report in headless Chromium (Playwright) and check what a reader would see.

Uses Debian's ``chromium`` (``/usr/bin/chromium``, or ``$SEQLAB_CHROMIUM``) through Playwright's
Python package; Playwright's own browser downloads are never needed. :func:`browser_missing`
says why the check cannot run here (the tests skip, or fail under ``SEQLAB_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

# no sandbox (root in CI containers), no GPU, and nothing the browser would fetch on its own
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALLOWED_SCHEMES = ("file:", "data:", "about:")

# per table: body rows and the body cells that show nothing
TABLES_JS = """tables => tables.map(t => ({
    id: t.id,
    rows: t.tBodies.length ? Array.from(t.tBodies).reduce((n, b) => n + b.rows.length, 0) : 0,
    empty: Array.from(t.querySelectorAll('tbody td, thead th'))
        .filter(c => c.innerText.trim() === '').length,
    cells: Array.from(t.querySelectorAll('tbody td')).map(c => c.innerText.trim()),
}))"""
# per image: decoded and with a size (naturalWidth is 0 for a broken or blocked image)
IMAGES_JS = """images => images.map(i => ({
    alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
    scheme: i.currentSrc.split(':')[0],
}))"""


class BrowserCheckError(AssertionError):
    """The page, as Chromium shows it, is missing something or fetched from the network."""


def chromium_path() -> str:
    """The Chromium executable: ``$SEQLAB_CHROMIUM``, else ``chromium`` on PATH, else Debian's."""
    return os.environ.get("SEQLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def browser_missing() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not Path(chromium_path()).is_file():
        return f"no Chromium at {chromium_path()} (apt-get install chromium)"
    return None


def require_browser() -> None:
    """Skip the calling test when the browser check cannot run here — or fail it, under
    ``SEQLAB_REQUIRE_BROWSER=1`` (``.ci/run`` sets it once it has installed Chromium)."""
    import pytest

    missing = browser_missing()
    if missing:
        if os.environ.get("SEQLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SEQLAB_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)


def check_html_in_browser(html: Path, screenshot: Path) -> dict[str, Any]:
    """Open ``html`` in headless Chromium, check it, save a full-page PNG screenshot.

    Checks: the page has a title and it matches the ``<h1>``; at least one
    ``table.report-table``, each with at least one body row and no empty cell; every ``img``
    decoded (naturalWidth and naturalHeight > 0), one per ``figure.report-figure``; no request
    left ``file:`` / ``data:``; no console error (e.g. a Content-Security-Policy violation).

    Returns:
        ``{"title", "tables", "rows", "images", "sections", "cells", "requests"}``: counts,
        except ``cells`` (each table's body cells as shown, by table id) and ``requests``.

    Raises:
        BrowserCheckError: a check failed (the message says which).
    """
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            title = page.title()
            heading = page.inner_text("h1")
            tables = page.eval_on_selector_all("table.report-table", TABLES_JS)
            images = page.eval_on_selector_all("img", IMAGES_JS)
            figures = page.locator("figure.report-figure").count()
            sections = page.locator("section.report-section").count()
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    problems = _problems(title, heading, tables, images, figures, requests, errors)
    if problems:
        raise BrowserCheckError(f"{html}: " + "; ".join(problems))
    return {
        "title": title,
        "tables": len(tables),
        "rows": sum(t["rows"] for t in tables),
        "images": len(images),
        "sections": sections,
        "cells": {t["id"]: t["cells"] for t in tables},
        "requests": requests,
    }


def _problems(
    title: str,
    heading: str,
    tables: list[dict[str, Any]],
    images: list[dict[str, Any]],
    figures: int,
    requests: list[str],
    errors: list[str],
) -> list[str]:
    problems = []
    if not title.strip() or title.strip() != heading.strip():
        problems.append(f"title {title!r} is empty or differs from the heading {heading!r}")
    if not tables:
        problems.append("no table.report-table")
    problems += [f"table #{t['id']} has no body rows" for t in tables if t["rows"] < 1]
    problems += [f"table #{t['id']} has {t['empty']} empty cells" for t in tables if t["empty"]]
    problems += [
        f"image {i['alt']!r} not decoded ({i['width']}x{i['height']}, complete={i['complete']})"
        for i in images
        if not (i["complete"] and i["width"] > 0 and i["height"] > 0)
    ]
    problems += [
        f"image {i['alt']!r} is not embedded (src scheme {i['scheme']})"
        for i in images
        if i["scheme"] != "data"
    ]
    if len(images) != figures:
        problems.append(f"{figures} figures but {len(images)} images")
    problems += [f"network request to {url}" for url in requests if not url.startswith(ALLOWED_SCHEMES)]
    problems += [f"console error: {e}" for e in errors]
    return problems
