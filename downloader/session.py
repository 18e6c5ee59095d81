"""What every part of a run shares: the HTTP session, its policies, and stopping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from downloader import __version__
from downloader.config import Settings
from downloader.errors import Interrupted
from downloader.netsafety import AddressPolicy, GuardedResolver
from downloader.retry import RetryPolicy

T = TypeVar("T")
# Bytes aiohttp buffers per response before pausing the socket (its default: 64 KiB).
# Larger reads mean fewer, larger chunks: fewer writer-thread hops on big files.
READ_BUFFER = 1024 * 1024


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy the settings ask for."""
    return RetryPolicy(
        retries=settings.retries,
        base=settings.retry_base,
        cap=settings.retry_cap,
        max_wait=settings.max_retry_wait,
    )


def client_timeout(settings: Settings) -> aiohttp.ClientTimeout:
    """Connect and per-read idle timeouts; no total, so big files on slow links finish."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
    )


def address_policy(settings: Settings) -> AddressPolicy:
    """Which addresses documents may come from; the Skop API host is trusted."""
    api_host = (URL(settings.api_url).host or "").lower()
    return AddressPolicy(public_only=settings.public_only, exempt_hosts=frozenset({api_host}))


@contextlib.asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """The run's one HTTP session. No default auth: the key is added per API request."""
    connector = aiohttp.TCPConnector(
        limit=settings.concurrency + 2,
        limit_per_host=0,
        resolver=GuardedResolver(policy=address_policy(settings)),
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=client_timeout(settings),
        headers={"User-Agent": f"fetch-docs/{__version__}"},
        trust_env=False,
        read_bufsize=READ_BUFFER,
    ) as session:
        yield session


async def run_unless_stopped(work: Coroutine[Any, Any, T], *events: asyncio.Event) -> T:
    """Await ``work``; if one of ``events`` is set first, cancel it and raise Interrupted."""
    task = asyncio.ensure_future(work)
    watchers = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (*watchers, task):
            pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if task.cancelled():
        msg = "interrupted; finished documents and the manifest are kept"
        raise Interrupted(msg)
    return task.result()
