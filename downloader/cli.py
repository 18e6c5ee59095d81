"""The ``fetch-docs`` command: flags, settings, signals, exit codes.

This module and ``console`` are the only ones that print. Exit codes: 0 every
selected document is on disk and verified; 1 some documents failed (the rest are
kept); 2 usage, config or output-folder error; 3 Skop API error; 4 job not
completed; 5 another run holds the output folder; 130 interrupted (143 by SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from downloader import __version__
from downloader.console import PROG, display_for, error, report
from downloader.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    FetchDocsError,
    Interrupted,
)

if TYPE_CHECKING:
    from downloader.config import Settings
    from downloader.console import Display
    from downloader.summary import RunSummary

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
    add("jobs", nargs="*", metavar="JOB_ID", help="Skop job id, e.g. job_4fc79a89797e")
    add("--jobs-file", metavar="FILE", help="job ids, one per line, # comments; - reads stdin")
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
    add("--layout", choices=["flat", "job", "type"], help="flat (default), <job>/ or <type>/")
    add("--verify", action="store_true", default=None, help="re-hash kept files, refetch bad ones")
    add("--refresh", action="store_true", default=None, help="revalidate kept files (ETag)")
    add("--wait", action="store_true", default=None, help="wait for running jobs to finish")
    add("--wait-interval", type=float, metavar="S", help="seconds between status polls (15)")
    add("--wait-timeout", type=float, metavar="S", help="longest wait for a job or lock (3600)")
    add("--wait-lock", action="store_true", default=None, help="wait for another run's lock")
    add("--keep-mismatched", action="store_true", default=None, help="keep HTML sent for a pdf")
    add("--public-only", action="store_true", default=None, help="refuse private/loopback hosts")
    add("--no-space-check", action="store_true", default=None, help="skip the free-space check")
    add("--dry-run", action="store_true", help="list what would be fetched; download nothing")
    add("--json", action="store_true", help="print the run summary as JSON on stdout")
    add("--summary-file", type=Path, metavar="FILE", help="also write the JSON summary to FILE")
    add("--log-format", choices=["text", "json"], help="event lines without a terminal")
    add("-q", "--quiet", action="store_true", default=None, help="no progress, no summary line")
    add("--version", action="version", version=f"%(prog)s {__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["demo"]:
            return _run(build_demo_parser().parse_args(argv[1:]), demo=True)
        return _run(build_parser().parse_args(argv), demo=False)
    except FetchDocsError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted; finished documents and the manifest are kept")
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, *, demo: bool) -> int:
    from downloader.config import FILE_KEYS, load_settings

    flags = {key: value for key, value in vars(args).items() if key in FILE_KEYS - {"jobs"}}
    if demo:
        from downloader.demo import DEMO_API_KEY

        flags |= {"api_key": DEMO_API_KEY, "api_url": "http://127.0.0.1"}
        flags["out"] = flags["out"] or DEMO_OUT
    config = getattr(args, "config", None)
    settings = load_settings(flags=flags, config_file=config)
    display = display_for(quiet=settings.quiet, log_format=settings.log_format)
    signals = _Signals()
    try:
        pulling = _pull_demo if demo else _pull
        summary = asyncio.run(signals.watch(pulling(settings, args, display, signals.stop)))
    except Interrupted as exc:
        raise signals.explain(exc) from None
    finally:
        if display is not None:
            display.close()
    logged = display is not None and display.logs_events
    report(summary, as_json=args.json, quiet=settings.quiet, logged=logged)
    _write_summary(summary, settings.summary_file)
    if summary.interrupted:
        error(str(signals.explain(Interrupted("interrupted"))))
        return signals.exit_code
    return summary.exit_code


def _write_summary(summary: RunSummary, path: Path | None) -> None:
    """``--summary-file``: the JSON summary, for the scheduler's alerting."""
    if path is None:
        return
    try:
        path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        error(f"cannot write --summary-file '{path}': {exc.strerror or exc}")


def job_ids(args: argparse.Namespace, settings: Settings) -> list[str]:
    """Job ids from the arguments and --jobs-file; else the config file's ``jobs``."""
    from downloader.config import read_jobs_file

    given = list(args.jobs)
    if settings.jobs_file is not None:
        given += read_jobs_file(settings.jobs_file)
    return given or list(settings.jobs)


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


async def _pull(
    settings: Settings, args: argparse.Namespace, display: Display | None, stop: asyncio.Event
) -> RunSummary:
    from downloader.job import pull

    jobs = job_ids(args, settings)
    return await pull(
        jobs=jobs, settings=settings, dry_run=args.dry_run, progress=display, stop=stop
    )


async def _pull_demo(
    settings: Settings, args: argparse.Namespace, display: Display | None, stop: asyncio.Event
) -> RunSummary:
    from downloader.demo import DEMO_JOB_ID, demo_catalog, serve

    async with serve(demo_catalog()) as base_url:
        if not settings.quiet:
            error(f"demo: Skop-like server at {base_url}, pulling {DEMO_JOB_ID}", prefix=False)
        settings = settings.model_copy(update={"api_url": base_url})
        from downloader.job import pull

        return await pull(
            jobs=[DEMO_JOB_ID],
            settings=settings,
            dry_run=args.dry_run,
            progress=display,
            stop=stop,
        )


if __name__ == "__main__":
    sys.exit(main())
