"""Streaming downloads: bytes go to ``<name>.part``, hashed on the way, then renamed.

A file appears under its final name only once every byte the server promised has
arrived: short bodies, dropped connections, oversize bodies and disk errors leave
no final file. Memory stays flat: bodies are streamed in chunks, never read whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiofiles
import aiohttp
from yarl import URL

from downloader.errors import (
    DiskError,
    DocumentError,
    HttpStatusError,
    IncompleteBody,
    TooLarge,
    TransferError,
    UnsafeUrl,
)
from downloader.retry import RetryPolicy, parse_retry_after, with_retries

CHUNK_SIZE: Final = 256 * 1024
MAX_REDIRECTS: Final = 10
PART_SUFFIX: Final = ".part"
# Documents are compressed already; identity keeps Content-Length meaningful.
DOCUMENT_HEADERS: Final = {"Accept-Encoding": "identity"}


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """What one successful download produced."""

    size: int
    sha256: str
    http_status: int
    content_type: str | None
    final_url: str


class HostSlots:
    """At most ``total`` downloads at once, and at most ``per_host`` per host."""

    def __init__(self, *, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_host)
        )

    @contextlib.asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[None]:
        """Wait for the host's slot first, so a busy host never blocks a global one."""
        async with self._hosts[str(URL(url).origin())], self._total:
            yield


def part_path(dest: Path) -> Path:
    """Where ``dest`` is written until it is complete."""
    return dest.with_name(dest.name + PART_SUFFIX)


class Fetcher:
    """Downloads documents over one shared session, with retries and host limits."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        policy: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        slots: HostSlots,
        max_bytes: int | None = None,
        on_bytes: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._session = session
        self._policy = policy
        self._timeout = timeout
        self._slots = slots
        self._max_bytes = max_bytes
        self._on_bytes = on_bytes

    async def fetch(self, *, url: str, dest: Path) -> Fetched:
        """Download ``url`` to ``dest``; on any failure no file exists under ``dest``."""
        check_url(url)
        part = part_path(dest)
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            fetched = await with_retries(lambda _: self._attempt(url, part), policy=self._policy)
            part.replace(dest)
        except OSError as exc:
            part.unlink(missing_ok=True)
            msg = f"cannot write '{dest.name}': {exc.strerror or exc}"
            raise DiskError(msg) from exc
        except DocumentError:
            part.unlink(missing_ok=True)
            raise
        return fetched

    async def _attempt(self, url: str, part: Path) -> Fetched:
        async with self._slots.hold(url):
            return await self._transfer(url, part)

    async def _transfer(self, url: str, part: Path) -> Fetched:
        """One GET into ``part``; the one place where aiohttp's errors become ours."""
        try:
            async with self._session.get(
                url,
                headers=DOCUMENT_HEADERS,
                timeout=self._timeout,
                max_redirects=MAX_REDIRECTS,
            ) as response:
                return await self._receive(response, url, part)
        except aiohttp.TooManyRedirects as exc:
            msg = f"more than {MAX_REDIRECTS} redirects for url '{url}'"
            raise UnsafeUrl(msg) from exc
        except (aiohttp.RedirectClientError, aiohttp.InvalidURL) as exc:
            msg = f"refused redirect to a non-http(s) or invalid url from '{url}'"
            raise UnsafeUrl(msg) from exc
        except aiohttp.ClientPayloadError as exc:
            msg = f"the connection broke mid-body for url '{url}'"
            raise IncompleteBody(msg) from exc
        except aiohttp.ClientError as exc:
            msg = f"{type(exc).__name__} for url '{url}': {exc}"
            raise TransferError(msg) from exc
        except TimeoutError as exc:
            msg = f"timed out waiting for data from url '{url}'"
            raise TransferError(msg) from exc

    async def _receive(self, response: aiohttp.ClientResponse, url: str, part: Path) -> Fetched:
        _check_status(response, url)
        expected = _expected_length(response)
        if expected is not None:
            self._check_size(expected, url)
        size, digest = await self._stream(response, url, part)
        if expected is not None and size != expected:
            msg = f"got {size} of {expected} bytes for url '{url}'"
            raise IncompleteBody(msg)
        return Fetched(
            size=size,
            sha256=digest,
            http_status=response.status,
            content_type=response.headers.get("Content-Type"),
            final_url=str(response.url),
        )

    async def _stream(
        self, response: aiohttp.ClientResponse, url: str, part: Path
    ) -> tuple[int, str]:
        """Copy the body into ``part`` chunk by chunk, counting and hashing as it goes."""
        hasher = hashlib.sha256()
        size = 0
        async with aiofiles.open(part, "wb") as file:
            async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                size += len(chunk)
                self._check_size(size, url)
                hasher.update(chunk)
                await file.write(chunk)
                self._on_bytes(len(chunk))
        return size, hasher.hexdigest()

    def _check_size(self, size: int, url: str) -> None:
        if self._max_bytes is not None and size > self._max_bytes:
            limit = self._max_bytes / (1024 * 1024)
            msg = f"larger than --max-size-mb {limit:g} for url '{url}'"
            raise TooLarge(msg)


def check_url(url: str) -> None:
    """Refuse anything but absolute http(s) URLs before any connection is made."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        msg = f"invalid url '{url}'"
        raise UnsafeUrl(msg) from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        msg = f"refused url '{url}': only absolute http and https urls are fetched"
        raise UnsafeUrl(msg)


def _check_status(response: aiohttp.ClientResponse, url: str) -> None:
    if response.status < 400:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    msg = f"{response.status} {response.reason or ''}".rstrip() + f" for url '{url}'"
    raise HttpStatusError(msg, status=response.status, retry_after=retry_after)


def _expected_length(response: aiohttp.ClientResponse) -> int | None:
    """Content-Length, when it describes the bytes we will read (no content coding)."""
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    return response.content_length
