"""Shared fixtures: the bundled Skop-like server on 127.0.0.1, settings, and a CLI runner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from downloader.config import Settings
from downloader.demo import (
    DEMO_API_KEY,
    NO_FAULTS,
    DemoDocument,
    DemoJob,
    DemoState,
    Faults,
    demo_catalog,
    make_document,
    serve,
)

CLI_TIMEOUT = 60.0


@dataclass
class Server:
    """A running demo server and the state it serves and counts."""

    state: DemoState
    url: str

    def document_hits(self) -> int:
        """Requests that reached document paths (not the API)."""
        return sum(n for path, n in self.state.hits.items() if not path.startswith("/scrape"))


StartServer = Callable[[DemoState], Awaitable[Server]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start servers for custom states; all stop when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(state: DemoState) -> Server:
            url = await stack.enter_async_context(serve(state))
            return Server(state=state, url=url)

        yield start


@pytest.fixture
async def demo(start_server: StartServer) -> Server:
    """The default demo catalog, served."""
    return await start_server(demo_catalog())


def fast_settings(server: Server, out: Path, **overrides: Any) -> Settings:
    """Settings pointed at ``server`` with retries and timeouts short enough for tests."""
    values: dict[str, Any] = {
        "api_url": server.url,
        "api_key": DEMO_API_KEY,
        "out": out,
        "retry_base": 0.01,
        "retry_cap": 0.05,
        "connect_timeout": 5.0,
        "read_timeout": 5.0,
    }
    return Settings.model_validate(values | overrides)


def listing(
    path: str,
    *,
    size: int = 4000,
    document_type: str = "pdf",
    name: str | None = None,
    faults: Faults = NO_FAULTS,
) -> DemoDocument:
    """A served document scored 0.9, named after its path unless told otherwise."""
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return make_document(
        path=path,
        document_type=document_type,
        size=size,
        name=stem if name is None else name,
        confidence_score=0.9,
        faults=faults,
    )


def one_job(*documents: DemoDocument, job_id: str = "job_test1", **fields: Any) -> DemoState:
    """A state with one job listing ``documents``."""
    return DemoState(jobs=[DemoJob(job_id=job_id, documents=list(documents), **fields)])


def _limit_file_size(limit: int) -> None:
    """In the child: fail writes past ``limit`` bytes with EFBIG instead of killing it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@dataclass
class CliResult:
    """What a fetch-docs process did."""

    code: int
    stdout: str
    stderr: str


async def run_cli(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    on_started: Callable[[asyncio.subprocess.Process], Awaitable[None]] | None = None,
    max_file_size: int | None = None,
    stdin: bytes | None = None,
) -> CliResult:
    """Run ``python -m downloader ARGS`` as a real process, bounded in time.

    ``max_file_size`` caps the size of any file the process writes (RLIMIT_FSIZE), the
    way a full disk would stop it: writes past it fail with EFBIG.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SKOP_")}
    environ |= env or {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "downloader", *map(str, args),
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environ, cwd=cwd,
        preexec_fn=None if max_file_size is None else lambda: _limit_file_size(max_file_size),
    )  # fmt: skip
    if on_started is not None:
        await on_started(process)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), CLI_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(), stderr.decode())
