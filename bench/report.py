"""Markdown tables and the results file."""

from __future__ import annotations

import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

Cell = str | int | float | None


@dataclass
class Section:
    """One titled block of the report: a table and notes under it."""

    title: str
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[Cell]] = ()
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        parts = [f"### {self.title}", ""]
        if self.headers:
            parts += [table(self.headers, self.rows), ""]
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"


def fmt(value: Cell, digits: int = 2) -> str:
    """A table cell: floats rounded, missing values as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A Markdown table; numbers right-aligned."""
    cells = [[fmt(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":" if n else "-" * (w + 2))
            for w, n in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in cells)])


def _first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    if done.returncode != 0:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0].split(" (")[0]


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "?"
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    return names[0] if names else "?"


def _revision() -> str:
    """The commit fetch-docs was benchmarked at, read-only (no index refresh)."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=20, check=False, env=env)  # fmt: skip

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("diff-index", "--quiet", "HEAD", "--", "downloader").returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return "unknown revision"
    if head.returncode != 0:
        return "unknown revision"
    return f"commit {head.stdout.strip()}" + (" + uncommitted changes in downloader/" * dirty)


def machine_info(fetch_docs: Sequence[str], elapsed: float) -> list[str]:
    """Bullet lines describing where and how the bench ran."""
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    return [
        f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"command: `{command}`",
        f"machine: {os.cpu_count()} cores ({_cpu_model()}), {platform.platform()}",
        f"Python {platform.python_version()}; {_first_line([*fetch_docs, '--version'])} "
        f"({_revision()}); "
        f"{_first_line(['aria2c', '--version'])}; {_first_line(['curl', '--version'])}",
        f"total bench runtime: {elapsed:.0f} s",
    ]


def write_markdown(path: Path, *, intro: Sequence[str], sections: Sequence[Section]) -> None:
    """The whole report as one Markdown file."""
    body = ["# fetch-docs benchmark results", "", *(f"- {line}" for line in intro), ""]
    body += [section.markdown() for section in sections]
    path.write_text("\n".join(body))
