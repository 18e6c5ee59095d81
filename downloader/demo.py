"""A deterministic imitation of the Skop API that also serves the documents it lists.

One aiohttp application answers both halves of what fetch-docs talks to:

* the Skop API (``/health/``, ``/scrape/results/{job_id}``, ``/scrape/status/{job_id}``),
  with Bearer / ``X-API-Key`` authentication and the reference's JSON bodies, and
* the crawled "websites": every :class:`DemoDocument` is served at its ``path`` with
  validators (ETag, Last-Modified), ``Range`` / ``If-Range`` / ``If-None-Match``
  support, streamed in 64 KiB chunks.

Document URLs in API answers are made absolute with the scheme and ``Host`` header of
the request, so whatever address a client used to reach the server is the address it
downloads from. Per-document :class:`Faults` imitate flaky web servers (errors, 429s,
dropped connections, short bodies, stalls, redirect chains, HTML error pages) and
``DemoJob.results_fault`` breaks the results endpoint. :class:`DemoState` counts and
logs every request so tests can assert on what reached the server.

Used by ``fetch-docs demo`` (:func:`serve` on an ephemeral port with
:func:`demo_catalog`), by the end-to-end tests (:func:`make_app`, :func:`make_document`)
and by benchmarks (``demo_catalog(scale=...)``, :func:`bulk_job`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import math
import re
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from downloader import samples

__all__ = [
    "CHUNK_SIZE",
    "DEMO_API_KEY",
    "DEMO_JOB_ID",
    "LAST_MODIFIED",
    "NO_FAULTS",
    "DemoDocument",
    "DemoError",
    "DemoJob",
    "DemoState",
    "Faults",
    "RequestRecord",
    "bulk_job",
    "demo_catalog",
    "make_app",
    "make_document",
    "serve",
]

DEMO_API_KEY = "sk-demo0000000000000000"
DEMO_JOB_ID = "job_4fc79a89797e"
CHUNK_SIZE = 64 * 1024
LAST_MODIFIED = "Tue, 12 Mar 2024 09:30:00 GMT"
RATE_LIMIT_PER_HOUR = 100
DROP_PAUSE = 0.05  # seconds between the last byte of a cut body and the hang-up

_MIB = 1024 * 1024
_CREATED = datetime(2024, 3, 12, 9, 30, 0, tzinfo=UTC)
_STARTED = _CREATED + timedelta(seconds=2)
_COMPLETED = _CREATED + timedelta(seconds=187, microseconds=500_000)
_ESTIMATED = _CREATED + timedelta(minutes=5)
_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_AGENTS = ("planner", "crawler", "extractor", "downloader")
_STATUS_MESSAGES = {
    "pending": "Job is queued for processing.",
    "in_progress": "Job is crawling the website.",
    "completed": "Job completed successfully.",
    "failed": "Job failed.",
    "cancelled": "Job was cancelled.",
}
_HOP = re.compile(r"/r/(\d+)(/.*)", re.DOTALL)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
    "<h1>Members area</h1><p>Please log in to view this document.</p>"
    '<form method="post" action="/login"><input name="user"><input name="password" '
    'type="password"><button>Log in</button></form></body></html>'
)


@dataclass(frozen=True)
class Faults:
    """Per-document fault knobs; the defaults mean "behave like a good web server".

    Request counts are per served path, read from ``DemoState.hits`` (clear it to re-arm).
    Order on the file: the first ``rate_limit_times`` requests get 429, the next
    ``fail_times`` get 500; the request after those is the "first" one for ``stall`` and
    ``drop_after``. ``status`` and ``redirects`` act before all of that.
    """

    status: int | None = None
    fail_times: int = 0
    rate_limit_times: int = 0
    retry_after: str = "1"
    drop_after: int | None = None
    short_body: bool = False
    stall: float = 0.0
    redirects: int = 0
    redirect_host: str | None = None
    html: bool = False
    latency: float | None = None
    chunk_delay: float = 0.0


NO_FAULTS = Faults()


@functools.lru_cache(maxsize=1024)
def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class DemoDocument:
    """One listing of a job and the file served for it.

    ``claimed_size_mb`` defaults (NaN sentinel) to the real size in MiB rounded to three
    decimals; ``None`` omits the field. ``content_type`` defaults (empty string) to the
    usual type for ``document_type``. Instances carry only their fields (the digest is
    cached outside), so ``DemoDocument(**doc.__dict__)`` and ``dataclasses.replace`` work.
    """

    path: str
    name: str
    document_type: str
    confidence_score: float
    source_page: str
    body: bytes = field(repr=False)
    claimed_size_mb: float | None = math.nan
    faults: Faults = NO_FAULTS
    content_type: str = ""
    listed_url: str | None = None  # listed instead of this server's URL (bad or foreign URLs)

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or "?" in self.path or "#" in self.path:
            msg = f"document path must start with '/' and have no query: {self.path!r}"
            raise ValueError(msg)
        if self.claimed_size_mb is not None and math.isnan(self.claimed_size_mb):
            object.__setattr__(self, "claimed_size_mb", round(len(self.body) / _MIB, 3))
        if not self.content_type:
            content_type = samples.content_type_for(self.document_type)
            object.__setattr__(self, "content_type", content_type)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the exact bytes served."""
        return _digest(self.body)

    @property
    def etag(self) -> str:
        """The strong, quoted ETag the server sends."""
        return f'"{self.sha256[:16]}"'

    @property
    def size(self) -> int:
        """Length of the body in bytes."""
        return len(self.body)


@dataclass(frozen=True)
class DemoError:
    """An ErrorEntry of a job; a ``page_url`` starting with ``/`` is made absolute."""

    error_id: str
    agent_name: str
    error_type: str
    error_message: str
    page_url: str | None = None
    is_recoverable: bool = True


@dataclass
class DemoJob:
    """A scraping job: its listings (paths may repeat) and how its endpoints behave."""

    job_id: str
    documents: list[DemoDocument]
    status: str = "completed"
    website: str = "https://www.example.org"
    results_fault: str | None = None
    completes_after_polls: int | None = None  # status polls after which it is "completed"
    status_fault: str | None = None  # None | "429-once" (429 + Retry-After: 1 on first poll)
    prompt: str = "Find board meeting minutes, agendas and annual reports"
    errors: list[DemoError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    method: str
    path: str
    host: str
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic clock)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class DemoState:
    """Everything the server knows and counts. Mutable: tests tweak it between runs."""

    def __init__(
        self, *, jobs: Iterable[DemoJob], api_key: str = DEMO_API_KEY, latency: float = 0.0
    ) -> None:
        self.jobs: dict[str, DemoJob] = {job.job_id: job for job in jobs}
        self.api_key = api_key
        self.latency = latency
        self.hits: Counter[str] = Counter()
        self.log: list[RequestRecord] = []
        self._index: dict[str, DemoDocument] = {}
        self._indexed: list[object] = []  # keeps the fingerprint's objects (and ids) alive
        self._fingerprint: tuple[int, ...] = ()

    def document(self, path: str) -> DemoDocument:
        """The document served at ``path`` (first listing wins); KeyError if none.

        The index is rebuilt when a job, or a job's ``documents`` list, is replaced or
        changes length: assign a new list to change what a job serves.
        """
        fingerprint = tuple(
            part
            for job in self.jobs.values()
            for part in (id(job), id(job.documents), len(job.documents))
        )
        if fingerprint != self._fingerprint:
            docs = list(itertools.chain.from_iterable(j.documents for j in self.jobs.values()))
            self._index = {}
            for doc in docs:
                self._index.setdefault(doc.path, doc)
            self._indexed = [*self.jobs.values(), *(job.documents for job in self.jobs.values())]
            self._fingerprint = fingerprint
        return self._index[path]

    def reset(self) -> None:
        """Forget hits and the log, which re-arms every "first N requests" fault."""
        self.hits.clear()
        self.log.clear()

    def records(self, path: str) -> list[RequestRecord]:
        """Logged requests for one path."""
        return [record for record in self.log if record.path == path]


_STATE = web.AppKey("demo_state", DemoState)


# --------------------------------------------------------------------------- catalog


def make_document(
    *,
    path: str,
    document_type: str,
    size: int,
    name: str,
    confidence_score: float,
    source_page: str = "/docs",
    faults: Faults = NO_FAULTS,
) -> DemoDocument:
    """A document whose bytes are a valid-looking file of ``document_type``, seeded by path."""
    title = name or path.rsplit("/", 1)[-1]
    body = samples.make_body(document_type=document_type, size=size, seed=path, title=title)
    return DemoDocument(
        path=path,
        name=name,
        document_type=document_type,
        confidence_score=confidence_score,
        source_page=source_page,
        body=body,
        faults=faults,
    )


_CATALOG: tuple[tuple[str, str, float, str, float, str], ...] = (
    # path, type, KiB (times scale), name, confidence, source page
    ("/files/minutes-jan-2024.pdf", "pdf", 180, "Board Meeting Minutes - January 2024", 0.95,
     "/board/minutes"),
    ("/files/minutes-feb-2024.pdf", "pdf", 240, "Board Meeting Minutes - February 2024", 0.93,
     "/board/minutes"),
    ("/files/annual-report-2023.pdf", "pdf", 1500, "Annual Report", 0.91, "/reports"),
    ("/reports/2022/annual-report.pdf", "pdf", 900, "Annual Report", 0.88, "/reports/archive"),
    ("/files/proces-verbal-2024-03-12.pdf", "pdf", 95, "Procès-verbal \u2013 séance du 12 mars",
     0.82, "/conseil/seances"),
    ("/files/budget-2024.docx", "docx", 60, "Budget Proposal 2024 (draft)", 0.76, "/finance"),
    ("/files/ordinance-2024-07.docx", "docx", 25, "Ordinance 2024-07 (amended)", 0.68,
     "/legal/ordinances"),
    ("/files/agenda 2024-04.pdf", "pdf", 40, "", 0.61, "/board/agendas"),
    ("/files/notes/comments.txt", "txt", 12, "Q1/Q2 summary: parking & zoning?", 0.55,
     "/public"),
    ("/files/newsletter-spring.pdf", "pdf", 320, "Newsletter — Spring 2024 🌸", 0.42, "/news"),
    ("/files/passwd.txt", "txt", 2, "../../etc/passwd", 0.34, "/misc/links"),
)  # fmt: skip
_WRONG_SIZE = ("/files/budget-2024.docx", 3.2)  # claims 3.2 MB, is about 0.06 MB
_NO_SIZE = "/files/notes/comments.txt"  # file_size_mb omitted
_DUPLICATE = ("/files/minutes-feb-2024.pdf", "/archive/2024")  # same URL, second page


def _catalog_documents(scale: int) -> list[DemoDocument]:
    documents = [
        make_document(
            path=path,
            document_type=kind,
            size=int(kib * 1024 * scale),
            name=name,
            confidence_score=score,
            source_page=page,
        )
        for path, kind, kib, name, score, page in _CATALOG
    ]
    by_path = {doc.path: index for index, doc in enumerate(documents)}
    wrong = by_path[_WRONG_SIZE[0]]
    documents[wrong] = replace(documents[wrong], claimed_size_mb=_WRONG_SIZE[1])
    omitted = by_path[_NO_SIZE]
    documents[omitted] = replace(documents[omitted], claimed_size_mb=None)
    duplicate = documents[by_path[_DUPLICATE[0]]]
    documents.append(replace(duplicate, source_page=_DUPLICATE[1], confidence_score=0.87))
    return documents


def demo_catalog(*, scale: int = 1) -> DemoState:
    """The default demo job DEMO_JOB_ID: 12 listings, deterministic bytes, no faults."""
    job = DemoJob(
        job_id=DEMO_JOB_ID,
        documents=_catalog_documents(max(1, scale)),
        errors=[
            DemoError(
                error_id="err_7d2c0194",
                agent_name="downloader",
                error_type="download_timeout",
                error_message="Timed out after 30s downloading /files/scan-2019-11.pdf",
                page_url="/board/archive",
            )
        ],
        warnings=["Some documents were too large to download"],
    )
    return DemoState(jobs=[job])


def bulk_job(*, job_id: str = "job_bulk", count: int, size: int = 64 * 1024) -> DemoJob:
    """A job of ``count`` distinct PDFs of ``size`` bytes each, for benchmarks."""
    documents = [
        make_document(
            path=f"/bulk/doc-{index:05d}.pdf",
            document_type="pdf",
            size=size,
            name=f"Bulk document {index}",
            confidence_score=0.9,
            source_page="/bulk",
        )
        for index in range(count)
    ]
    return DemoJob(job_id=job_id, documents=documents)


# --------------------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _now() -> str:
    return _iso(datetime.now(UTC))


def _base(request: web.BaseRequest) -> str:
    return f"{request.scheme}://{request.host}"


def _absolute(request: web.BaseRequest, path: str) -> str:
    if not path.startswith("/"):
        return path
    return _base(request) + quote(path, safe="/")


def _state(request: web.Request) -> DemoState:
    return request.app[_STATE]


# --------------------------------------------------------------------------- API bodies


def _document_json(request: web.Request, doc: DemoDocument, index: int) -> dict[str, object]:
    body: dict[str, object] = {
        "name": doc.name,
        "url": doc.listed_url or _absolute(request, doc.path),
        "source_page": _absolute(request, doc.source_page),
        "document_type": doc.document_type,
        "confidence_score": doc.confidence_score,
        "extracted_at": _iso(_STARTED + timedelta(seconds=60 + index)),
    }
    if doc.claimed_size_mb is not None:
        body["file_size_mb"] = doc.claimed_size_mb
    return body


def _error_json(request: web.Request, error: DemoError) -> dict[str, object]:
    page_url = None if error.page_url is None else _absolute(request, error.page_url)
    return {
        "error_id": error.error_id,
        "agent_name": error.agent_name,
        "error_type": error.error_type,
        "error_message": error.error_message,
        "page_url": page_url,
        "timestamp": _iso(_STARTED + timedelta(seconds=95)),
        "is_recoverable": error.is_recoverable,
    }


def _found(job: DemoJob) -> int:
    """Documents discovered: the listings plus the ones that failed (one per error)."""
    return len(job.documents) + len(job.errors)


def _pages_crawled(job: DemoJob) -> int:
    return 4 * len({doc.source_page for doc in job.documents}) + 3


def _metadata(job: DemoJob) -> dict[str, object]:
    done = job.status in _TERMINAL
    return {
        "job_id": job.job_id,
        "created_at": _iso(_CREATED),
        "started_at": _iso(_STARTED),
        "completed_at": _iso(_COMPLETED) if done else None,
        "original_website": job.website,
        "original_prompt": job.prompt,
        "parameters": {
            "single_page": False,
            "timeout": 1800,
            "confidence_threshold": 0.1,
            "file_type": "document",
            "max_file_size_mb": 100,
        },
        "final_status": job.status,
    }


def _results_body(request: web.Request, job: DemoJob) -> dict[str, object]:
    completed = job.status == "completed"
    listed = job.documents if completed else []
    found = _found(job) if completed else 0
    runtime = (_COMPLETED - _CREATED).total_seconds() if completed else 0.0
    message = (
        f"Job completed successfully. Found {len(listed)} document(s)."
        if completed
        else f"Job is {job.status}; results are not available yet."
    )
    return {
        "job_id": job.job_id,
        "status": job.status,
        "message": message,
        "documents": [_document_json(request, doc, i) for i, doc in enumerate(listed)],
        "metadata": _metadata(job),
        "total_documents_found": found,
        "total_documents_downloaded": len(listed),
        "total_pages_crawled": _pages_crawled(job) if completed else 0,
        "success_rate": round(len(listed) / found, 3) if found else (1.0 if completed else 0.0),
        "cost": round(0.01 * _pages_crawled(job) + 0.002 * found, 4) if completed else 0.0,
        "total_runtime_seconds": runtime,
        "runtime_minutes": round(runtime / 60, 2),
        "has_errors": bool(job.errors),
        "errors": [_error_json(request, error) for error in job.errors],
        "warnings": list(job.warnings),
    }


def _progress(status: str) -> tuple[float | None, str | None, list[str]]:
    """Progress, current agent and completed agents for a status."""
    table: dict[str, tuple[float | None, str | None, int]] = {
        "pending": (0.0, None, 0),
        "in_progress": (45.0, "crawler", 1),
        "extracting": (80.0, "extractor", 2),
        "completed": (100.0, None, 4),
    }
    progress, agent, done = table.get(status, (None, None, 0))
    return progress, agent, list(_AGENTS[:done])


def _status_body(request: web.Request, job: DemoJob) -> dict[str, object]:
    completed = job.status == "completed"
    active = job.status not in _TERMINAL
    progress, agent, agents_done = _progress(job.status)
    return {
        "job_id": job.job_id,
        "status": job.status,
        "message": _STATUS_MESSAGES.get(job.status, f"Job is {job.status}."),
        "progress": progress,
        "created_at": _iso(_CREATED),
        "started_at": None if job.status == "pending" else _iso(_STARTED),
        "completed_at": None if active else _iso(_COMPLETED),
        "estimated_completion": _iso(_ESTIMATED) if active else None,
        "current_agent": agent,
        "agents_completed": agents_done,
        "total_pages_crawled": _pages_crawled(job) if completed else 0,
        "total_documents_found": _found(job) if completed else 0,
        "is_active": active,
        "has_errors": bool(job.errors),
        "errors": [_error_json(request, error) for error in job.errors],
        "warnings": list(job.warnings),
    }


# --------------------------------------------------------------------------- API handlers


def _rate_headers(state: DemoState) -> dict[str, str]:
    used = sum(count for path, count in state.hits.items() if path.startswith("/scrape/"))
    return {
        "X-Rate-Limit-Remaining": str(max(0, RATE_LIMIT_PER_HOUR - used)),
        "X-Rate-Limit-Reset": "3600",
    }


def _api_json(request: web.Request, body: object, *, status: int = 200) -> web.Response:
    response = web.json_response(body, status=status)
    response.headers.update(_rate_headers(_state(request)))
    return response


def _api_error(request: web.Request, status: int, message: str) -> web.Response:
    body = {
        "error": True,
        "message": message,
        "status_code": status,
        "path": request.path,
        "timestamp": _now(),
    }
    return _api_json(request, body, status=status)


def _authorized(request: web.Request, api_key: str) -> bool:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        token = request.headers.get("X-API-Key", "")
    return secrets.compare_digest(token.strip().encode(), api_key.encode())


def _guard(request: web.Request) -> DemoJob | web.Response:
    """The requested job, or the 401/404 answer."""
    state = _state(request)
    if not _authorized(request, state.api_key):
        response = _api_error(request, 401, "Invalid or missing API key")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    job = state.jobs.get(request.match_info["job_id"])
    if job is None:
        return _api_error(request, 404, "Job not found or access denied")
    return job


def _results_fault(request: web.Request, job: DemoJob) -> web.Response | None:
    fault, first = job.results_fault, _state(request).hits[request.path] == 1
    if fault == "500" or (fault == "500-once" and first):
        return _api_error(request, 500, "Internal server error")
    if fault == "429-once" and first:
        return _rate_limited(request)
    if fault == "bad-json":
        text = f'{{"job_id": "{job.job_id}", "status": "completed", "documents": [{{"name": '
        return web.Response(text=text, content_type="application/json")
    return None


async def _health(request: web.Request) -> web.Response:
    body = {
        "status": "healthy",
        "service": "skop",
        "version": "1.0.0",
        "timestamp": _now(),
        "dependency_status": "operational",
    }
    return web.json_response(body)


async def _results(request: web.Request) -> web.Response:
    job = _guard(request)
    if isinstance(job, web.Response):
        return job
    fault = _results_fault(request, job)
    if fault is not None:
        return fault
    body = _results_body(request, job)
    documents = body["documents"]
    if job.results_fault == "bad-schema" and isinstance(documents, list) and documents:
        documents[0]["confidence_score"] = 1.5
    return _api_json(request, body)


async def _status(request: web.Request) -> web.Response:
    job = _guard(request)
    if isinstance(job, web.Response):
        return job
    polls = _state(request).hits[request.path]
    if job.status_fault == "429-once" and polls == 1:
        return _rate_limited(request)
    if job.completes_after_polls is not None and polls >= job.completes_after_polls:
        job.status = "completed"
    return _api_json(request, _status_body(request, job))


def _rate_limited(request: web.Request) -> web.Response:
    response = _api_error(request, 429, "Rate limit exceeded. Try again later.")
    response.headers["Retry-After"] = "1"
    response.headers["X-Rate-Limit-Remaining"] = "0"
    return response


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class _Span:
    start: int
    stop: int
    partial: bool


def _html_page(status: int, text: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", headers=headers)


def _status_page(status: int) -> web.Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    page = f"<!DOCTYPE html><html><body><h1>{status} {phrase}</h1></body></html>"
    return _html_page(status, page)


def _resolve(state: DemoState, path: str) -> tuple[DemoDocument, int] | None:
    """The document behind a path and how many redirect hops remain before it."""
    hop = _HOP.fullmatch(path)
    with suppress(KeyError):
        if hop is not None:
            return state.document(hop[2]), int(hop[1])
        doc = state.document(path)
        return doc, doc.faults.redirects
    return None


def _redirect(request: web.Request, doc: DemoDocument, remaining: int) -> web.Response:
    target = _absolute(request, f"/r/{remaining}{doc.path}")
    if remaining == 0 and doc.faults.redirect_host is not None:
        port = request.url.port
        host = doc.faults.redirect_host + ("" if port is None else f":{port}")
        target = f"{request.scheme}://{host}{quote(f'/r/0{doc.path}', safe='/')}"
    return web.Response(status=302, headers={"Location": target}, text="Found")


def _file_headers(doc: DemoDocument) -> dict[str, str]:
    return {
        "Content-Type": doc.content_type,
        "ETag": doc.etag,
        "Last-Modified": LAST_MODIFIED,
        "Accept-Ranges": "bytes",
    }


def _same_date(value: str) -> bool:
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(LAST_MODIFIED)
    except (TypeError, ValueError):
        return False


def _not_modified(request: web.Request, doc: DemoDocument) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return "*" in tags or doc.etag in tags
    since = request.headers.get("If-Modified-Since")
    return since is not None and _same_date(since)


def _if_range_ok(request: web.Request, doc: DemoDocument) -> bool:
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    validator = validator.strip()
    return validator == doc.etag or _same_date(validator)


def _span(request: web.Request, doc: DemoDocument) -> _Span | None:
    """The byte span to send; None when the Range cannot be satisfied (416)."""
    full = _Span(0, doc.size, partial=False)
    header = request.headers.get("Range")
    if header is None or not _if_range_ok(request, doc):
        return full
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match[1] or match[2]):
        return full  # malformed or multi-range: ignore, as RFC 9110 allows
    if not match[1]:  # suffix: the last N bytes
        count = int(match[2])
        return _Span(max(0, doc.size - count), doc.size, True) if count and doc.size else None
    start = int(match[1])
    if match[2] and int(match[2]) < start:
        return full  # invalid range: ignore
    stop = min(doc.size, int(match[2]) + 1) if match[2] else doc.size
    return None if start >= doc.size else _Span(start, stop, partial=True)


async def _stream(response: web.StreamResponse, data: memoryview, delay: float) -> bool:
    """Write ``data`` in 64 KiB chunks; False if the client went away."""
    for offset in range(0, len(data), CHUNK_SIZE):
        if delay and offset:
            await asyncio.sleep(delay)
        try:
            await response.write(data[offset : offset + CHUNK_SIZE])
        except ConnectionResetError:
            return False
    return True


async def _send_file(
    request: web.Request, doc: DemoDocument, span: _Span, *, first: bool
) -> web.StreamResponse:
    length = span.stop - span.start
    response = web.StreamResponse(status=206 if span.partial else 200, headers=_file_headers(doc))
    if span.partial:
        response.headers["Content-Range"] = f"bytes {span.start}-{span.stop - 1}/{doc.size}"
    response.content_length = length
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    send = length
    if doc.faults.short_body:
        send = length // 2
    elif first and doc.faults.drop_after is not None:
        send = min(length, doc.faults.drop_after)
    data = memoryview(doc.body)[span.start : span.start + send]
    await _stream(response, data, doc.faults.chunk_delay)
    if send < length:
        # Let the bytes reach the client first, as on a real network, then hang up.
        await asyncio.sleep(DROP_PAUSE)
        response.force_close()
    return response


async def _serve(request: web.Request, doc: DemoDocument) -> web.StreamResponse:
    faults = doc.faults
    attempt = _state(request).hits[request.path] - faults.rate_limit_times - faults.fail_times
    if attempt <= -faults.fail_times:
        headers = {"Retry-After": faults.retry_after}
        return _html_page(429, "<h1>429 Too Many Requests</h1>", headers=headers)
    if attempt <= 0:
        return _status_page(500)
    if attempt == 1 and faults.stall:
        await asyncio.sleep(faults.stall)
    if faults.html:
        return _html_page(200, _LOGIN_PAGE)
    if _not_modified(request, doc):
        return web.Response(status=304, headers=_file_headers(doc))
    span = _span(request, doc)
    if span is None:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{doc.size}"})
    return await _send_file(request, doc, span, first=attempt == 1)


async def _document(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    found = _resolve(state, request.path)
    if found is None:
        return _status_page(404)
    doc, hops = found
    latency = state.latency if doc.faults.latency is None else doc.faults.latency
    if latency > 0:
        await asyncio.sleep(latency)
    if doc.faults.status is not None:
        return _status_page(doc.faults.status)
    if hops > 0:
        return _redirect(request, doc, hops - 1)
    return await _serve(request, doc)


# --------------------------------------------------------------------------- app


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = _state(request)
    state.hits[request.path] += 1
    state.log.append(
        RequestRecord(
            method=request.method,
            path=request.path,
            host=request.headers.get("Host", ""),
            headers=dict(request.headers),
        )
    )
    return await handler(request)


def make_app(state: DemoState) -> web.Application:
    """The aiohttp application: Skop API routes, then every other path as a document."""
    app = web.Application(middlewares=[_record])
    app[_STATE] = state
    app.router.add_get("/health/", _health)
    app.router.add_get("/health", _health)
    app.router.add_get("/scrape/results/{job_id}", _results)
    app.router.add_get("/scrape/status/{job_id}", _status)
    app.router.add_get("/{tail:.*}", _document)
    return app


@asynccontextmanager
async def serve(state: DemoState, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the app on host:port (0 = ephemeral) and yield its base URL.

    The URL looks like ``http://127.0.0.1:41233``; the server stops when the block exits.
    """
    runner = web.AppRunner(
        make_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()
