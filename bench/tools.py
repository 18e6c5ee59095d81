"""The downloaders under test, how to call them, and how to check what they wrote.

fetch-docs is given the Skop job (it lists the documents through the API, applies
``--min-confidence`` and downloads); the peers (aria2c, curl, the naive aiohttp script)
are given the already-selected URL list. Each writes into a fresh folder; the folder
is then checked file by file against the sha256 the server's documents have.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from downloader.demo import DEMO_API_KEY

BENCH = Path(__file__).resolve().parent
_MANIFEST = "manifest.json"
_BOOKKEEPING = ".fetch-docs."  # fetch-docs' .fetch-docs.journal, .fetch-docs.lock, ...


@dataclass(frozen=True)
class Job:
    """One document set to fetch, as each tool is told about it."""

    base_url: str
    job_id: str
    pairs: tuple[tuple[str, str], ...]  # (absolute URL, file name) of the selected documents
    concurrency: int
    per_host: int
    min_confidence: float | None = None
    output: tuple[str, ...] = ("--json",)  # fetch-docs' output flags (or ("--dry-run",))


Builder = Callable[[Job, Path, Path], list[str]]  # (job, out folder, scratch folder) -> argv


@dataclass(frozen=True)
class Tool:
    """A downloader: how to build its command line, and what it needs installed."""

    name: str
    build: Builder
    needs: str | None = None  # executable that must be on PATH
    install: str = ""
    env: Callable[[], Mapping[str, str]] | None = None  # its environment, if not the bench's

    def environment(self) -> Mapping[str, str] | None:
        return None if self.env is None else self.env()

    def missing(self) -> str | None:
        """Why the tool cannot run here (with how to install it), or None."""
        if self.needs is None or shutil.which(self.needs):
            return None
        return f"{self.name}: `{self.needs}` not found; install it with `{self.install}`"


def fetch_docs_command() -> list[str]:
    """The installed ``fetch-docs`` next to this Python, else on PATH, else ``-m``."""
    beside = Path(sys.executable).with_name("fetch-docs")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("fetch-docs")
    return [found] if found else [sys.executable, "-m", "downloader"]


def fetch_docs_env() -> dict[str, str]:
    """The environment with the demo key, and no API URL override."""
    env = {key: value for key, value in os.environ.items() if key != "SKOP_API_URL"}
    env["SKOP_API_KEY"] = DEMO_API_KEY
    return env


def _fetch_docs(job: Job, out: Path, _scratch: Path) -> list[str]:
    command = [
        *fetch_docs_command(),
        job.job_id,
        "--api-url",
        job.base_url,
        "--out",
        str(out),
        "--concurrency",
        str(job.concurrency),
        "--per-host",
        str(job.per_host),
        "--quiet",
    ]
    if job.min_confidence is not None:
        command += ["--min-confidence", str(job.min_confidence)]
    return command + list(job.output)


def _aria2c(job: Job, out: Path, scratch: Path) -> list[str]:
    listing = scratch / "aria2.txt"
    listing.write_text("".join(f"{url}\n  out={name}\n" for url, name in job.pairs))
    return [
        "aria2c",
        "-i",
        str(listing),
        "-j",
        str(job.concurrency),
        "-x1",
        "--file-allocation=none",
        "--console-log-level=warn",
        "--summary-interval=0",
        "-d",
        str(out),
    ]


def _curl(job: Job, out: Path, scratch: Path) -> list[str]:
    config = scratch / "curl.cfg"
    config.write_text(
        "".join(f'url = "{url}"\noutput = "{out / name}"\n' for url, name in job.pairs)
    )
    return [
        "curl",
        "--parallel",
        "--parallel-max",
        str(job.concurrency),
        "-K",
        str(config),
        "--silent",
        "--show-error",
        "--fail",
    ]


def _naive(job: Job, out: Path, scratch: Path) -> list[str]:
    listing = scratch / "naive.tsv"
    listing.write_text("".join(f"{url}\t{name}\n" for url, name in job.pairs))
    script = BENCH / "naive.py"
    return [sys.executable, str(script), str(listing), "-j", str(job.concurrency), "-d", str(out)]


FETCH_DOCS = Tool("fetch-docs", _fetch_docs, env=fetch_docs_env)
PEERS = (
    Tool("aria2c", _aria2c, needs="aria2c", install="apt-get install aria2"),
    Tool("curl", _curl, needs="curl", install="apt-get install curl"),
    Tool("naive aiohttp", _naive),
)


@dataclass(frozen=True)
class Check:
    """What a tool left in its folder, compared with what it should have fetched."""

    correct: int  # expected documents present with the right bytes
    expected: int
    stray: int  # other files (wrong bytes, leftovers such as .part or .aria2)

    def __str__(self) -> str:
        extra = f" (+{self.stray} stray)" if self.stray else ""
        return f"{self.correct}/{self.expected}{extra}"


def _bookkeeping(path: Path) -> bool:
    return path.name == _MANIFEST or path.name.startswith(_BOOKKEEPING)


def check_folder(out: Path, expected: Collection[str]) -> Check:
    """Hash every file under ``out`` but fetch-docs' bookkeeping (manifest, journal, lock)."""
    wanted = Counter(expected)
    correct = stray = 0
    for path in sorted(p for p in out.rglob("*") if p.is_file() and not _bookkeeping(p)):
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if wanted[digest] > 0:
            wanted[digest] -= 1
            correct += 1
        else:
            stray += 1
    return Check(correct=correct, expected=len(expected), stray=stray)
