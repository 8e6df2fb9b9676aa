"""``seqlab report DIR [--out OUT]``: (re)write the report of a training run or a study.

* a study directory (``study.json``, written by ``seqlab compare``) -> the study report;
* a run directory (``config.yaml``, written by ``seqlab train --out``) -> the run report in
  ``DIR/report/`` (``report.html``, ``report.md``, ``report.json`` and the plots).

The HTML page is self-contained (figures embedded, no network needed to view it).

    $ seqlab report runs/parity
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqlab.errors import RunDirError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report",
        parents=[common],
        help="write the HTML/Markdown/JSON report of a run or a study",
        description="Write the self-contained HTML report (plus Markdown and JSON) of a training "
        "run directory (config.yaml) or a study directory (study.json).",
    )
    p.add_argument(
        "run_dir", type=Path, metavar="DIR", help="a `seqlab train --out` or `seqlab compare` directory"
    )
    p.add_argument("--out", type=Path, default=None, help="report directory (run default: DIR/report)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    directory: Path = args.run_dir
    if not directory.is_dir():
        raise RunDirError(f"{directory} is not a directory")
    if (directory / "study.json").is_file():
        paths = _study_report(directory, args.out)
    elif (directory / "config.yaml").is_file():
        from seqlab.reports.run_report import write_run_report

        paths = write_run_report(directory, args.out)
    else:
        raise RunDirError(
            f"{directory} is neither a study directory (no study.json) nor a run directory (no config.yaml)"
        )
    for kind, path in paths.items():
        for one in path if isinstance(path, list | tuple) else [path]:
            print(f"{kind:8s} {one}")
    return 0


def _study_report(directory: Path, out: Path | None) -> dict[str, Any]:
    from seqlab.reports.study_report import write_study_report

    return write_study_report(directory, out_dir=out)
