"""What the CLI shows: bars for a person, event lines for logs, the final report.

With a terminal on stderr: two tqdm bars. Without one (cron, systemd, pipes): one
line per event on stderr, timestamped text or JSON objects (``--log-format json``).
Only this module and ``cli`` print.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

    from downloader.manifest import Entry
    from downloader.summary import JobOutcome, RunSummary

PROG = "fetch-docs"


def error(message: str, *, prefix: bool = True) -> None:
    """One line on stderr."""
    print(f"{PROG}: error: {message}" if prefix else message, file=sys.stderr)


class BarProgress:
    """Two tqdm bars on stderr: documents done, and bytes received."""

    logs_events = False

    def __init__(self) -> None:
        from tqdm import tqdm  # noqa: PLC0415 (only a terminal needs it)

        self._tqdm = tqdm
        self._files: tqdm[Any] | None = None
        self._bytes: tqdm[Any] | None = None

    def planned(self, *, files: int, claimed_bytes: int) -> None:
        """Draw the bars."""
        self._files = self._tqdm(total=files, unit="doc", desc="documents", position=0)
        self._bytes = self._tqdm(
            total=claimed_bytes or None,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="bytes    ",
            position=1,
            mininterval=0.2,
        )

    def received(self, nbytes: int) -> None:
        """Advance the bytes bar."""
        if self._bytes is not None:
            self._bytes.update(nbytes)

    def finished(self, *, url: str, entry: Entry, outcome: str) -> None:
        """Advance the documents bar."""
        if self._files is not None:
            self._files.update(1)

    def job(self, outcome: JobOutcome) -> None:
        """Jobs are reported at the end."""

    def waiting(self, *, job_id: str, status: str) -> None:
        """Say which job is being waited for."""
        print(f"waiting for {job_id} ({status})", file=sys.stderr)

    def close(self) -> None:
        """End both bars; the bytes bar ends at what arrived, whatever was claimed."""
        if self._bytes is not None:
            self._bytes.total = self._bytes.n
        for bar in (self._files, self._bytes):
            if bar is not None:
                bar.close()


class LogProgress:
    """One line per event on stderr: ``<UTC time> <event> ...``, or a JSON object."""

    logs_events = True

    def __init__(self, *, as_json: bool) -> None:
        self._as_json = as_json

    def planned(self, *, files: int, claimed_bytes: int) -> None:
        """Downloads start."""
        self._log("downloading", f"{files} documents", files=files, claimed_bytes=claimed_bytes)

    def received(self, nbytes: int) -> None:
        """Too frequent to log."""

    def finished(self, *, url: str, entry: Entry, outcome: str) -> None:
        """One document's outcome."""
        detail = entry.error if entry.status == "failed" else f"{entry.size} bytes"
        self._log(
            outcome, f"{entry.path}: {detail}", url=url, path=entry.path, size=entry.size,
            sha256=entry.sha256, error=entry.error,
        )  # fmt: skip

    def job(self, outcome: JobOutcome) -> None:
        """A job's status once its results were asked for."""
        event = "error" if outcome.error else "job"
        text = outcome.error or f"{outcome.job_id}: {outcome.status}, {outcome.listed} listed"
        self._log(event, text, job_id=outcome.job_id, status=outcome.status, error=outcome.error)

    def waiting(self, *, job_id: str, status: str) -> None:
        """A job polled with --wait is still running."""
        self._log("waiting", f"{job_id}: {status}", job_id=job_id, status=status)

    def close(self) -> None:
        """Nothing to tidy."""

    def _log(self, event: str, text: str, **fields: object) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if self._as_json:
            line = json.dumps({"time": now, "event": event, **fields})
        else:
            line = f"{now} {event} {text}"
        print(line, file=sys.stderr, flush=True)


Display = BarProgress | LogProgress


def display_for(*, quiet: bool, log_format: str) -> Display | None:
    """Bars for a person at a terminal, event lines otherwise, nothing when quiet."""
    if quiet:
        return None
    if sys.stderr.isatty() and log_format == "text":
        return BarProgress()
    return LogProgress(as_json=log_format == "json")


def report(summary: RunSummary, *, as_json: bool, quiet: bool, logged: bool) -> None:
    """Print the dry-run listing or the summary; problems on stderr unless logged already."""
    if not logged:
        for job in summary.jobs:
            if job.error:
                error(job.error)
        for failure in summary.failures:
            error(f"failed: {failure.path}: {failure.error}", prefix=False)
    if summary.halted:
        error(f"stopped early, the disk is full: {summary.halted}")
    if as_json:
        print(summary.model_dump_json(indent=2))
    elif summary.dry_run:
        print_plan(summary, out=sys.stdout)
    elif not quiet:
        print(summary_text(summary))


def print_plan(summary: RunSummary, *, out: TextIO) -> None:
    """The dry-run table: type, score, claimed size, target path, name."""
    for item in summary.planned:
        size = "?" if item.file_size_mb is None else f"{item.file_size_mb:g} MB"
        mark = " (present)" if item.present else ""
        print(
            f"{item.document_type or '?':5} {item.confidence_score:4.2f} {size:>10}  "
            f"{item.path}{mark}  <- {item.name!r}",
            file=out,
        )
    print(f"{summary.selected} documents selected (dry run: nothing downloaded)", file=out)


def summary_text(summary: RunSummary) -> str:
    """The summary line, and one line per job when there are several."""
    lines = [
        f"{summary.selected} selected, {summary.downloaded} downloaded: "
        f"{_counts(summary.counts.model_dump(), summary)}; "
        f"{human_bytes(summary.bytes)} in {summary.seconds:.2f} s"
        + (f" -> {summary.manifest}" if summary.manifest else "")
    ]
    if len(summary.jobs) > 1:
        lines += [
            f"  {job.job_id}: {job.status}, {job.selected} selected: "
            f"{_counts(job.counts.model_dump(), None)}"
            for job in summary.jobs
        ]
    return "\n".join(lines)


def _counts(counts: dict[str, int], summary: RunSummary | None) -> str:
    parts = [f"{value} {name}" for name, value in counts.items()]
    if summary is not None and summary.not_attempted:
        parts.append(f"{summary.not_attempted} not attempted")
    if summary is not None and summary.mismatched:
        parts.append(f"{summary.mismatched} not of their claimed type")
    return ", ".join(parts)


def human_bytes(count: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
