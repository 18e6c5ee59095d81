"""The ``fetch-docs`` command: flags, progress bars, messages, exit codes.

This is the only module that prints. Exit codes: 0 every selected document is on
disk and verified; 1 some documents failed (the rest are kept); 2 usage, config
or output-folder error; 3 Skop API error; 4 job not completed; 130 interrupted (143 by SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from downloader import __version__
from downloader.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    FetchDocsError,
    Interrupted,
)

if TYPE_CHECKING:
    from tqdm import tqdm

    from downloader.config import Settings
    from downloader.job import RunSummary
    from downloader.manifest import Entry

PROG = "fetch-docs"
DEMO_OUT = Path("demo-docs")


class _Parser(argparse.ArgumentParser):
    """argparse, with one-line errors and the usage exit code."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``fetch-docs JOB_ID [JOB_ID ...]``."""
    parser = _Parser(
        prog=PROG,
        description="Download the documents a Skop scraping job found into a verified folder.",
        epilog="Run 'fetch-docs demo' to see it work against a bundled server, no key needed.",
    )
    add = parser.add_argument
    add("jobs", nargs="+", metavar="JOB_ID", help="Skop job id, e.g. job_4fc79a89797e")
    add("--api-url", metavar="URL", help="Skop API base URL (env SKOP_API_URL)")
    add("--api-key", metavar="KEY", help="Skop API key; prefer env SKOP_API_KEY (flags show in ps)")
    add("--config", type=Path, metavar="FILE", help="TOML config file with the flags' keys")
    _add_common(parser)
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    """The parser for ``fetch-docs demo``."""
    parser = _Parser(
        prog=f"{PROG} demo",
        description="Run a bundled Skop-like server on 127.0.0.1 and pull its demo job.",
    )
    _add_common(parser, default_out=str(DEMO_OUT))
    return parser


def _add_common(parser: argparse.ArgumentParser, *, default_out: str = "docs") -> None:
    """Options shared by a real pull and the demo."""
    add = parser.add_argument
    add("-o", "--out", type=Path, metavar="DIR", help=f"output folder (default ./{default_out})")
    add("--min-confidence", type=float, metavar="F", help="skip documents scored below F (0-1)")
    add("--type", action="append", metavar="T", help="only these types (repeat or comma-separate)")
    add("--exclude-type", action="append", metavar="T", help="never these types")
    add("--max-size-mb", type=float, metavar="N", help="skip documents larger than N MB")
    add("--concurrency", type=int, metavar="N", help="downloads at once (default 8)")
    add("--per-host", type=int, metavar="N", help="downloads at once per host (default 4)")
    add("--retries", type=int, metavar="N", help="retries per request (default 5)")
    add("--retry-base", type=float, metavar="S", help="first backoff step in seconds (0.5)")
    add("--retry-cap", type=float, metavar="S", help="longest backoff between retries (30)")
    add("--max-retry-wait", type=float, metavar="S", help="longest Retry-After obeyed (120)")
    add("--connect-timeout", type=float, metavar="S", help="connect timeout (default 30)")
    add("--read-timeout", type=float, metavar="S", help="longest silence mid-transfer (120)")
    add("--keep-mismatched", action="store_true", default=None, help="keep HTML sent for a pdf")
    add("--public-only", action="store_true", default=None, help="refuse private/loopback hosts")
    add("--no-space-check", action="store_true", default=None, help="skip the free-space check")
    add("--dry-run", action="store_true", help="list what would be fetched; download nothing")
    add("--json", action="store_true", help="print the run summary as JSON on stdout")
    add("-q", "--quiet", action="store_true", default=None, help="no progress bar or summary line")
    add("--version", action="version", version=f"%(prog)s {__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["demo"]:
            return _run(build_demo_parser().parse_args(argv[1:]), demo=True)
        return _run(build_parser().parse_args(argv), demo=False)
    except FetchDocsError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted; finished documents and the manifest are kept")
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, *, demo: bool) -> int:
    from downloader.config import load_settings

    flags = {key: getattr(args, key, None) for key in _SETTING_FLAGS}
    if demo:
        from downloader.demo import DEMO_API_KEY

        flags |= {"api_key": DEMO_API_KEY, "api_url": "http://127.0.0.1"}
        flags["out"] = flags["out"] or DEMO_OUT
    config = getattr(args, "config", None)
    settings = load_settings(flags=flags, config_file=config)
    progress = _progress_for(settings)
    signals = _Signals()
    try:
        pulling = _pull_demo if demo else _pull
        summary = asyncio.run(signals.watch(pulling(settings, args, progress, signals.stop)))
    except Interrupted as exc:
        raise signals.explain(exc) from None
    finally:
        if progress is not None:
            progress.close()
    _report(summary, as_json=args.json, quiet=settings.quiet)
    if summary.interrupted:
        _error(str(signals.explain(Interrupted("interrupted"))))
        return signals.exit_code
    return summary.exit_code


class _Signals:
    """SIGINT and SIGTERM ask the pipeline to stop; a second one kills it as usual."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.received: int | None = None

    async def watch(self, work: Coroutine[Any, Any, RunSummary]) -> RunSummary:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            return await work
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self.received = signum
        self.stop.set()
        asyncio.get_running_loop().remove_signal_handler(signum)

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.received == signal.SIGTERM else EXIT_INTERRUPTED

    def explain(self, exc: Interrupted) -> Interrupted:
        """``exc`` naming the signal, with the exit code it calls for."""
        name = signal.Signals(self.received).name if self.received else "a signal"
        error = Interrupted(f"interrupted by {name}; finished documents and the manifest are kept")
        error.exit_code = self.exit_code
        return error


_SETTING_FLAGS = (
    "api_url", "api_key", "out", "min_confidence", "type", "exclude_type", "max_size_mb",
    "concurrency", "per_host", "retries", "retry_base", "retry_cap", "max_retry_wait",
    "connect_timeout", "read_timeout", "keep_mismatched", "public_only", "no_space_check",
    "quiet",
)  # fmt: skip


async def _pull(
    settings: Settings, args: argparse.Namespace, progress: Any, stop: asyncio.Event
) -> RunSummary:
    from downloader.job import pull

    return await pull(
        jobs=args.jobs, settings=settings, dry_run=args.dry_run, progress=progress, stop=stop
    )


async def _pull_demo(
    settings: Settings, args: argparse.Namespace, progress: Any, stop: asyncio.Event
) -> RunSummary:
    from downloader.demo import DEMO_JOB_ID, demo_catalog, serve

    async with serve(demo_catalog()) as base_url:
        if not settings.quiet:
            _error(f"demo: Skop-like server at {base_url}, pulling {DEMO_JOB_ID}", prefix=False)
        settings = settings.model_copy(update={"api_url": base_url})
        from downloader.job import pull

        return await pull(
            jobs=[DEMO_JOB_ID],
            settings=settings,
            dry_run=args.dry_run,
            progress=progress,
            stop=stop,
        )


class BarProgress:
    """Two tqdm bars on stderr: documents done, and bytes received."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._files: tqdm[Any] | None = None
        self._bytes: tqdm[Any] | None = None

    def planned(self, *, files: int, claimed_bytes: int) -> None:
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
        if self._bytes is not None:
            self._bytes.update(nbytes)

    def finished(self, *, url: str, entry: Entry) -> None:
        if self._files is not None:
            self._files.update(1)

    def close(self) -> None:
        """End both bars; the bytes bar ends at what arrived, whatever was claimed."""
        if self._bytes is not None:
            self._bytes.total = self._bytes.n
        for bar in (self._files, self._bytes):
            if bar is not None:
                bar.close()


def _progress_for(settings: Settings) -> BarProgress | None:
    """Bars only for a person watching a terminal."""
    if settings.quiet or not sys.stderr.isatty():
        return None
    return BarProgress()


def _report(summary: RunSummary, *, as_json: bool, quiet: bool) -> None:
    """Print the dry-run listing or the summary, and every problem on stderr."""
    for job in summary.jobs:
        if job.error:
            _error(job.error)
    for failure in summary.failures:
        _error(f"failed: {failure.path}: {failure.error}", prefix=False)
    if summary.halted:
        _error(f"stopped early, the disk is full: {summary.halted}")
    if as_json:
        print(summary.model_dump_json(indent=2))
    elif summary.dry_run:
        _print_plan(summary, out=sys.stdout)
    elif not quiet:
        print(_summary_line(summary))


def _print_plan(summary: RunSummary, *, out: TextIO) -> None:
    for item in summary.planned:
        size = "?" if item.file_size_mb is None else f"{item.file_size_mb:g} MB"
        mark = " (present)" if item.present else ""
        print(
            f"{item.document_type or '?':5} {item.confidence_score:4.2f} {size:>10}  "
            f"{item.path}{mark}  <- {item.name!r}",
            file=out,
        )
    print(f"{summary.selected} documents selected (dry run: nothing downloaded)", file=out)


def _summary_line(summary: RunSummary) -> str:
    parts = [f"{summary.downloaded} downloaded"]
    if summary.already_present:
        parts.append(f"{summary.already_present} already present")
    parts.append(f"{summary.failed} failed")
    if summary.not_attempted:
        parts.append(f"{summary.not_attempted} not attempted")
    if summary.mismatched:
        parts.append(f"{summary.mismatched} not of their claimed type")
    where = f" -> {summary.manifest}" if summary.manifest else ""
    return (
        f"{summary.selected} selected: {', '.join(parts)}; "
        f"{_human_bytes(summary.bytes)} in {summary.seconds:.2f} s{where}"
    )


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def _error(message: str, *, prefix: bool = True) -> None:
    print(f"{PROG}: error: {message}" if prefix else message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
