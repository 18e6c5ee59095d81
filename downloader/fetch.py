"""Streaming downloads: bytes go to ``<name>.part``, hashed on the way, then renamed.

A file appears under its final name only once every byte the server promised has
arrived: short bodies, dropped connections, oversize bodies and disk errors leave
no final file. Memory stays flat: bodies are streamed in chunks, never read whole.

A ``.part`` whose response carried a validator (ETag or Last-Modified) is kept
after a transient failure, with the validator beside it in ``<name>.part.json``;
the next try, in this run or the next, asks for the rest with ``Range`` +
``If-Range``. A matching 206 appends; a 200 starts over; a 416 drops the part.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from downloader.errors import (
    ContentMismatch,
    DiskError,
    DocumentError,
    FetchDocsError,
    HttpStatusError,
    IncompleteBody,
    TooLarge,
    TransferError,
    UnsafeUrl,
)
from downloader.netsafety import AddressPolicy, BlockedAddress, blocked_cause, check_url_host
from downloader.retry import RetryPolicy, parse_retry_after, with_retries
from downloader.sniff import SNIFF_BYTES, compatible, detect_type, is_html_instead

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher

CHUNK_SIZE: Final = 1024 * 1024
SPILL_BYTES: Final = 256 * 1024  # bodies up to this size are written in one go
MAX_REDIRECTS: Final = 10
PART_SUFFIX: Final = ".part"
META_SUFFIX: Final = ".part.json"
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# Documents are compressed already; identity keeps Content-Length meaningful.
DOCUMENT_HEADERS: Final = {"Accept-Encoding": "identity"}
CONTENT_RANGE_START: Final = "bytes "


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """What one successful download produced."""

    size: int
    sha256: str
    http_status: int
    content_type: str | None
    final_url: str
    detected_type: str | None
    type_mismatch: bool
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, kw_only=True)
class Validators:
    """What a kept ``.part`` needs to be resumed safely."""

    url: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def if_range(self) -> str | None:
        """The ``If-Range`` value: a strong ETag, else the Last-Modified date."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


class PartFile:
    """A download in progress: ``<name>.part`` and its validators beside it.

    ``metas`` is the run's set of validator files known to exist (listed once at
    the start, kept up to date here), so most downloads cost no lookup for them.
    """

    def __init__(self, dest: Path, *, metas: set[Path]) -> None:
        self.dest = dest
        self.path = dest.with_name(dest.name + PART_SUFFIX)
        self.meta = dest.with_name(dest.name + META_SUFFIX)
        self._metas = metas

    def resume_point(self, url: str) -> tuple[int, str] | None:
        """``(offset, If-Range value)`` if the part can be continued for ``url``."""
        if self.meta not in self._metas:
            return None
        try:
            size = self.path.stat().st_size
            validators = Validators(**json.loads(self.meta.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        if size == 0 or validators.url != url or validators.if_range is None:
            return None
        return size, validators.if_range

    def save_validators(self, validators: Validators | None) -> None:
        """Make the part resumable (only possible when there is a validator)."""
        if validators is not None and validators.if_range is not None:
            self.meta.write_text(json.dumps(asdict(validators)), encoding="utf-8")
            self._metas.add(self.meta)

    def discard(self) -> None:
        """Remove the part and its validators."""
        self.path.unlink(missing_ok=True)
        self._drop_meta()

    def commit(self) -> None:
        """Give the complete part its final name."""
        self.path.replace(self.dest)
        self._drop_meta()

    def _drop_meta(self) -> None:
        if self.meta in self._metas:
            self.meta.unlink(missing_ok=True)
            self._metas.discard(self.meta)


class PartWriter:
    """Writes one response body into a part file, keeping the event loop free.

    A body up to ``SPILL_BYTES`` is kept in memory and written (and hashed) in one
    thread hop at the end: most documents are small, and one hop beats three. A
    larger body spills to the file, and from then on every chunk is written and
    hashed in a worker thread, so hashing overlaps with receiving. When the body
    spills, its validators are saved, so even a killed process can resume it; a
    smaller body that breaks off is salvaged (written, validators saved) instead.
    """

    def __init__(
        self, part: PartFile, *, offset: int, hasher: Hasher, validators: Validators | None
    ) -> None:
        self._part = part
        self._mode = "ab" if offset else "wb"
        self._hasher = hasher
        self._validators = validators
        self._buffer = bytearray()
        self._file: IO[Any] | None = None

    async def write(self, chunk: bytes) -> None:
        """Take the next chunk of the body."""
        if self._file is not None:
            await asyncio.to_thread(self._write, chunk)
            return
        self._buffer += chunk
        if len(self._buffer) >= SPILL_BYTES:
            await asyncio.to_thread(self._spill)

    async def finish(self) -> None:
        """Write what is buffered and close the file."""
        await asyncio.to_thread(self._finish)

    def salvage(self) -> None:
        """After a failure: keep what arrived, and make it resumable."""
        if self._file is None and self._buffer:
            self._spill()
        if self._file is not None:
            self._file.close()

    def _spill(self) -> None:
        self._part.save_validators(self._validators)
        self._file = self._part.path.open(self._mode)
        self._write(bytes(self._buffer))
        self._buffer.clear()

    def _write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self._hasher.update(chunk)

    def _finish(self) -> None:
        if self._file is None:
            self._hasher.update(self._buffer)
            with self._part.path.open(self._mode) as file:
                file.write(self._buffer)
        else:
            self._file.close()


class HostSlots:
    """At most ``total`` downloads at once and ``per_host`` per host; hosts can be paused."""

    def __init__(self, *, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_host)
        )
        self._paused_until: dict[str, float] = {}

    @contextlib.asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[None]:
        """Wait for the host's slot and pause first, so a busy host never holds a global slot."""
        host = host_key(url)
        async with self._hosts[host]:
            # A deadline that later 429s may push back: re-read it after each sleep.
            while (wait := self._paused_until.get(host, 0.0) - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            async with self._total:
                yield

    def pause(self, url: str, seconds: float) -> None:
        """Hold back every request to ``url``'s host for ``seconds`` (a 429 there)."""
        host = host_key(url)
        until = time.monotonic() + seconds
        self._paused_until[host] = max(until, self._paused_until.get(host, 0.0))


def host_key(url: str) -> str:
    """What per-host limits and pauses apply to: scheme and host[:port], lowercased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Fetcher:
    """Downloads documents over one shared session, with retries and host limits."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        policy: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        slots: HostSlots,
        addresses: AddressPolicy,
        max_bytes: int | None = None,
        keep_mismatched: bool = False,
        metas: set[Path] | None = None,
        on_bytes: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._session = session
        self._policy = policy
        self._timeout = timeout
        self._slots = slots
        self._addresses = addresses
        self._max_bytes = max_bytes
        self._keep_mismatched = keep_mismatched
        self._on_bytes = on_bytes
        self.retries = 0
        self.received = 0  # body bytes received, every try included
        self._metas = set() if metas is None else metas
        self._safe_hosts: set[str] = set()
        self._folders: set[Path] = set()

    async def fetch(
        self, *, url: str, dest: Path, claimed_type: str, known: Validators | None = None
    ) -> Fetched | None:
        """Download ``url`` to ``dest``; on any failure no file exists under ``dest``.

        With ``known`` validators of the file already at ``dest``, the request is
        conditional: None means the server says it has not changed (304).
        """
        part = PartFile(dest, metas=self._metas)
        try:
            self._check_url(url)
            if dest.parent not in self._folders:
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(dest.parent)
            fetched = await with_retries(
                lambda _: self._attempt(url, part, known),
                policy=self._policy,
                on_retry=lambda exc, delay: self._on_retry(url, exc, delay),
            )
            if fetched is None:
                return None
            fetched = self._check_content(url, claimed_type, fetched)
            part.commit()
        except OSError as exc:
            part.discard()
            raise _disk_error(exc, dest) from exc
        except DocumentError as exc:
            if not exc.retryable:
                part.discard()  # a retryable failure keeps its part for the next run
            raise
        return fetched

    def _on_retry(self, url: str, exc: FetchDocsError, delay: float) -> None:
        self.retries += 1
        if isinstance(exc, HttpStatusError) and exc.status == 429:
            self._slots.pause(url, delay)

    def _check_url(self, url: str) -> None:
        host = check_url(url)
        if host in self._safe_hosts:
            return
        try:
            check_url_host(host, policy=self._addresses)
        except BlockedAddress as exc:
            msg = f"{exc} (url '{url}')"
            raise UnsafeUrl(msg) from exc
        self._safe_hosts.add(host)

    def _check_content(self, url: str, claimed_type: str, fetched: Fetched) -> Fetched:
        """``fetched`` with its type mismatch noted; an HTML page for a document fails."""
        detected = fetched.detected_type
        if self._keep_mismatched or not is_html_instead(claimed=claimed_type, detected=detected):
            mismatch = not compatible(claimed=claimed_type, detected=detected)
            return replace(fetched, type_mismatch=mismatch)
        msg = (
            f"the server sent an HTML page, not a {claimed_type}: likely a login or error "
            f"page (url '{url}'; --keep-mismatched keeps such files)"
        )
        raise ContentMismatch(msg)

    async def _attempt(self, url: str, part: PartFile, known: Validators | None) -> Fetched | None:
        async with self._slots.hold(url):
            return await self._transfer(url, part, known)

    async def _transfer(self, url: str, part: PartFile, known: Validators | None) -> Fetched | None:
        """One try; the one place where aiohttp's errors become ours."""
        resume = None if known else part.resume_point(url)
        try:
            response = await self._open(url, _request_headers(resume, known))
            async with response:
                if known is not None and response.status == 304:
                    return None
                return await self._receive(response, url, part, resume)
        except aiohttp.ClientPayloadError as exc:
            msg = f"the connection broke mid-body for url '{url}'"
            raise IncompleteBody(msg) from exc
        except aiohttp.ClientError as exc:
            if blocked := blocked_cause(exc):
                msg = f"{blocked} (url '{url}')"
                raise UnsafeUrl(msg) from exc
            msg = f"{type(exc).__name__} for url '{url}': {exc}"
            raise TransferError(msg) from exc
        except TimeoutError as exc:
            msg = f"timed out waiting for data from url '{url}'"
            raise TransferError(msg) from exc

    async def _open(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET ``url``, following redirects ourselves so every hop is checked."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._session.get(
                current, headers=headers, timeout=self._timeout, allow_redirects=False
            )
            location = response.headers.get("Location")
            if response.status not in REDIRECTS or not location:
                return response
            response.release()
            current = str(response.url.join(URL(location)))
            self._check_url(current)
        msg = f"more than {MAX_REDIRECTS} redirects for url '{url}'"
        raise UnsafeUrl(msg)

    async def _receive(
        self,
        response: aiohttp.ClientResponse,
        url: str,
        part: PartFile,
        resume: tuple[int, str] | None,
    ) -> Fetched:
        if response.status == 416:
            part.discard()
            msg = f"416 Range Not Satisfiable for url '{url}': starting over"
            raise TransferError(msg)
        _check_status(response, url)
        try:
            offset = _resumed_offset(response, resume)
        except TransferError:
            part.discard()
            raise
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        validators = Validators(url=url, etag=etag, last_modified=modified) if offset == 0 else None
        expected = _expected_length(response)
        if expected is not None:
            self._check_size(offset + expected, url)
        size, digest, head = await self._stream(response, url, part, offset, validators)
        if expected is not None and size != offset + expected:
            msg = f"got {size} of {offset + expected} bytes for url '{url}'"
            raise IncompleteBody(msg)
        detected = detect_type(head)
        return Fetched(
            size=size,
            sha256=digest,
            http_status=response.status,
            content_type=response.headers.get("Content-Type"),
            final_url=str(response.url),
            detected_type=detected,
            type_mismatch=False,
            etag=etag,
            last_modified=modified,
        )

    async def _stream(
        self,
        response: aiohttp.ClientResponse,
        url: str,
        part: PartFile,
        offset: int,
        validators: Validators | None,
    ) -> tuple[int, str, bytes]:
        """Append the body to the part chunk by chunk, counting and hashing as it goes."""
        hasher, head = hashlib.sha256(), bytearray()
        if offset:
            hasher, head = await asyncio.to_thread(_hash_prefix, part.path, offset)
        writer = PartWriter(part, offset=offset, hasher=hasher, validators=validators)
        size = offset
        try:
            async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                size += len(chunk)
                self._check_size(size, url)
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                await writer.write(chunk)
                self.received += len(chunk)
                self._on_bytes(len(chunk))
        except BaseException:
            writer.salvage()
            raise
        await writer.finish()
        return size, hasher.hexdigest(), bytes(head)

    def _check_size(self, size: int, url: str) -> None:
        if self._max_bytes is not None and size > self._max_bytes:
            limit = self._max_bytes / (1024 * 1024)
            msg = f"larger than --max-size-mb {limit:g} for url '{url}'"
            raise TooLarge(msg)


def _request_headers(resume: tuple[int, str] | None, known: Validators | None) -> dict[str, str]:
    """Headers for a plain, resumed (Range) or conditional (If-None-Match) GET."""
    headers = dict(DOCUMENT_HEADERS)
    if resume is not None:
        headers |= {"Range": f"bytes={resume[0]}-", "If-Range": resume[1]}
    if known is not None and known.etag:
        headers["If-None-Match"] = known.etag
    if known is not None and known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    return headers


def check_url(url: str) -> str:
    """The host of ``url``; refuses anything but absolute http(s) URLs."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        msg = f"invalid url '{url}'"
        raise UnsafeUrl(msg) from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        msg = f"refused url '{url}': only absolute http and https urls are fetched"
        raise UnsafeUrl(msg)
    return parsed.host


def _hash_prefix(path: Path, offset: int) -> tuple[Hasher, bytearray]:
    """A sha256 fed with the first ``offset`` bytes of ``path``, and its sniffing head."""
    hasher = hashlib.sha256()
    head = bytearray()
    if offset:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_SIZE):
                hasher.update(chunk)
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
    return hasher, head


def _resumed_offset(response: aiohttp.ClientResponse, resume: tuple[int, str] | None) -> int:
    """Where the body starts: the resume offset for a matching 206, else 0."""
    if response.status != 206 or resume is None:
        return 0
    content_range = response.headers.get("Content-Range", "")
    start = content_range.removeprefix(CONTENT_RANGE_START).split("-", 1)[0]
    if start != str(resume[0]):
        msg = f"the server sent range '{content_range}', not bytes {resume[0]}-"
        raise TransferError(msg)
    return resume[0]


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


def _disk_error(exc: OSError, dest: Path) -> DiskError:
    msg = f"cannot write '{dest.name}': {exc.strerror or exc}"
    return DiskError(msg, errno=exc.errno)
