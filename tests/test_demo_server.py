"""End-to-end tests of the demo Skop server (downloader.demo) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from downloader.demo import (
    DEMO_API_KEY,
    DEMO_JOB_ID,
    LAST_MODIFIED,
    NO_FAULTS,
    DemoDocument,
    DemoJob,
    DemoState,
    Faults,
    demo_catalog,
    make_app,
    make_document,
    serve,
)

Client = TestClient[web.Request, web.Application]
Start = Callable[[DemoState], Awaitable[Client]]

AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}
JOB = "job_test1"
RESULTS = f"/scrape/results/{JOB}"


def _doc(
    path: str = "/f/a.pdf", *, size: int = 200_000, faults: Faults = NO_FAULTS
) -> DemoDocument:
    return make_document(
        path=path, document_type="pdf", size=size, name="A", confidence_score=0.9, faults=faults
    )


def _state(
    *documents: DemoDocument, status: str = "completed", results_fault: str | None = None
) -> DemoState:
    job = DemoJob(job_id=JOB, documents=list(documents), status=status, results_fault=results_fault)
    return DemoState(jobs=[job])


async def _read_partial(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    data = bytearray()
    try:
        async for chunk in response.content.iter_any():
            data += chunk
    except aiohttp.ClientPayloadError:
        return bytes(data), False
    return bytes(data), True


@pytest.fixture
def start(aiohttp_client: AiohttpClient) -> Start:
    """Serve a state through pytest-aiohttp's test server on 127.0.0.1."""

    async def run(state: DemoState) -> Client:
        return await aiohttp_client(make_app(state))

    return run


async def test_health_needs_no_key(start: Start) -> None:
    """/health/ answers without a key."""
    client = await start(_state())
    async with client.get("/health/") as response:
        body = await response.json()
    assert response.status == 200
    assert body["status"] == "healthy"
    assert body["service"] == "skop"
    assert body["version"] == "1.0.0"


async def test_results_require_a_valid_key(start: Start) -> None:
    """No key or a wrong key is a 401 error body; Bearer and X-API-Key are accepted."""
    client = await start(_state(_doc()))
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"X-API-Key": "sk-nope"}):
        async with client.get(RESULTS, headers=headers) as response:
            body = await response.json()
        assert response.status == 401
        assert body["error"] is True
        assert body["message"] == "Invalid or missing API key"
        assert body["status_code"] == 401
        assert body["path"] == RESULTS
        assert "timestamp" in body
    for headers in (AUTH, {"X-API-Key": DEMO_API_KEY}):
        async with client.get(RESULTS, headers=headers) as response:
            assert response.status == 200
            assert response.headers["X-Rate-Limit-Remaining"].isdigit()
            assert "X-Rate-Limit-Reset" in response.headers


async def test_unknown_job_is_404(start: Start) -> None:
    """An unknown job id is 404 with the API's message, for results and status."""
    client = await start(_state())
    for path in ("/scrape/results/job_missing0", "/scrape/status/job_missing0"):
        async with client.get(path, headers=AUTH) as response:
            body = await response.json()
        assert response.status == 404
        assert body["message"] == "Job not found or access denied"


async def test_catalog_results_shape_and_absolute_urls(start: Start) -> None:
    """The default job lists 12 documents with absolute URLs on the server's own address."""
    state = demo_catalog()
    client = await start(state)
    async with client.get(f"/scrape/results/{DEMO_JOB_ID}", headers=AUTH) as response:
        body = await response.json()
    base = str(client.make_url("/")).rstrip("/")
    docs = body["documents"]
    assert body["status"] == "completed"
    assert {"metadata", "total_documents_found", "success_rate", "cost", "errors"} <= body.keys()
    assert body["metadata"]["parameters"]["file_type"] == "document"
    assert body["has_errors"] is True
    assert body["errors"][0]["page_url"].startswith(base)
    assert len(docs) == 12
    assert all(d["url"].startswith(f"{base}/") and d["source_page"].startswith(base) for d in docs)
    urls = [d["url"] for d in docs]
    assert len(set(urls)) == 11
    assert [d["name"] for d in docs].count("Annual Report") == 2
    names = {d["name"] for d in docs}
    assert {"", "../../etc/passwd", "Procès-verbal \u2013 séance du 12 mars"} <= names
    assert f"{base}/files/agenda%202024-04.pdf" in urls
    assert sum("file_size_mb" not in d for d in docs) == 1
    assert any(d["document_type"] == "docx" and d["file_size_mb"] == 3.2 for d in docs)


async def test_urls_follow_the_host_header(start: Start) -> None:
    """Document URLs are built from the Host header the client sent."""
    client = await start(_state(_doc()))
    headers = {**AUTH, "Host": "docs.example.test:8080"}
    async with client.get(RESULTS, headers=headers) as response:
        body = await response.json()
    assert body["documents"][0]["url"] == "http://docs.example.test:8080/f/a.pdf"


@pytest.mark.parametrize(
    ("status", "active", "progress"),
    [
        ("in_progress", True, 45),
        ("extracting", True, 80),
        ("failed", False, None),
        ("completed", False, 100),
    ],
)
async def test_status_and_unfinished_results(
    start: Start, status: str, active: bool, progress: float | None
) -> None:
    """Status reports is_active and progress; results of an unfinished job list nothing."""
    client = await start(_state(_doc(), status=status))
    async with client.get(f"/scrape/status/{JOB}", headers=AUTH) as response:
        body = await response.json()
    assert (body["status"], body["is_active"], body["progress"]) == (status, active, progress)
    async with client.get(RESULTS, headers=AUTH) as response:
        results = await response.json()
    assert response.status == 200
    assert results["status"] == status
    assert len(results["documents"]) == (1 if status == "completed" else 0)


async def test_document_bytes_match_sha256(start: Start) -> None:
    """Every catalog document is served byte-exact with validators and length."""
    state = demo_catalog()
    client = await start(state)
    for doc in state.jobs[DEMO_JOB_ID].documents:
        async with client.get(doc.path) as response:
            data = await response.read()
        assert response.status == 200
        assert hashlib.sha256(data).hexdigest() == doc.sha256
        assert response.headers["Content-Length"] == str(doc.size)
        assert response.headers["Content-Type"].startswith(doc.content_type.split(";")[0])
        assert response.headers["ETag"] == doc.etag
        assert response.headers["Last-Modified"] == LAST_MODIFIED
        assert response.headers["Accept-Ranges"] == "bytes"


def test_catalog_files_are_valid_and_deterministic() -> None:
    """Catalog bytes are stable, well-formed PDF/DOCX/UTF-8, fault-free, and scale up."""
    first, second = demo_catalog(), demo_catalog()
    docs = first.jobs[DEMO_JOB_ID].documents
    assert [d.sha256 for d in docs] == [d.sha256 for d in second.jobs[DEMO_JOB_ID].documents]
    assert all(d.faults == NO_FAULTS for d in docs)
    for doc in docs:
        if doc.document_type == "pdf":
            assert doc.body.startswith(b"%PDF-1.4\n")
            assert doc.body.endswith(b"%%EOF\n")
            startxref = int(doc.body.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
            assert doc.body[startxref:].startswith(b"xref\n")
            offsets = re.findall(rb"(\d{10}) 00000 n ", doc.body[startxref:])
            assert all(re.match(rb"\d+ 0 obj\n", doc.body[int(o) :]) for o in offsets)
        elif doc.document_type == "docx":
            assert doc.body.startswith(b"PK\x03\x04")
            archive = zipfile.ZipFile(io.BytesIO(doc.body))
            assert archive.testzip() is None
            parts = set(archive.namelist())
            assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml"} <= parts
        else:
            doc.body.decode("utf-8")
    sizes = {d.path: d.size for d in docs}
    assert min(sizes.values()) >= 2000
    assert max(sizes.values()) <= 1_600_000
    big = demo_catalog(scale=2).jobs[DEMO_JOB_ID].documents
    assert all(b.size == 2 * sizes[b.path] for b in big)


async def test_range_and_if_range(start: Start) -> None:
    """Range gives 206 when If-Range matches, the full 200 when stale, and 416 past the end."""
    doc = _doc()
    client = await start(_state(doc))
    cases = [
        (
            {"Range": "bytes=100-", "If-Range": doc.etag},
            206,
            doc.body[100:],
            f"bytes 100-{doc.size - 1}/{doc.size}",
        ),
        ({"Range": "bytes=10-19"}, 206, doc.body[10:20], f"bytes 10-19/{doc.size}"),
        (
            {"Range": "bytes=-5"},
            206,
            doc.body[-5:],
            f"bytes {doc.size - 5}-{doc.size - 1}/{doc.size}",
        ),
        ({"Range": "bytes=100-", "If-Range": LAST_MODIFIED}, 206, doc.body[100:], None),
        ({"Range": "bytes=100-", "If-Range": '"stale0000000000"'}, 200, doc.body, None),
        ({"Range": "bytes=100-", "If-Range": "Wed, 01 Jan 2020 00:00:00 GMT"}, 200, doc.body, None),
    ]
    for headers, status, expected, content_range in cases:
        async with client.get(doc.path, headers=headers) as response:
            assert response.status == status, headers
            assert await response.read() == expected
            if content_range is not None:
                assert response.headers["Content-Range"] == content_range
    async with client.get(doc.path, headers={"Range": f"bytes={doc.size}-"}) as response:
        assert response.status == 416
        assert response.headers["Content-Range"] == f"bytes */{doc.size}"


async def test_if_none_match_and_head(start: Start) -> None:
    """A matching If-None-Match is 304; HEAD carries the length but no body."""
    doc = _doc()
    client = await start(_state(doc))
    async with client.get(doc.path, headers={"If-None-Match": doc.etag}) as response:
        assert response.status == 304
        assert response.headers["ETag"] == doc.etag
    async with client.head(doc.path) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(doc.size)
        assert await response.read() == b""


async def test_fail_times_then_ok(start: Start) -> None:
    """fail_times=2 answers 500 twice, then the file."""
    doc = _doc(faults=Faults(fail_times=2))
    client = await start(_state(doc))
    statuses = []
    for _ in range(3):
        async with client.get(doc.path) as response:
            statuses.append(response.status)
            data = await response.read()
    assert statuses == [500, 500, 200]
    assert hashlib.sha256(data).hexdigest() == doc.sha256


async def test_rate_limit_gives_429_with_retry_after(start: Start) -> None:
    """rate_limit_times=1 answers 429 with the configured Retry-After, then the file."""
    doc = _doc(faults=Faults(rate_limit_times=1, retry_after="7"))
    client = await start(_state(doc))
    async with client.get(doc.path) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"
    async with client.get(doc.path) as response:
        assert response.status == 200


async def test_short_body_is_cut_short(start: Start) -> None:
    """short_body announces the full length, sends half, and closes: the client sees an error."""
    doc = _doc(faults=Faults(short_body=True))
    client = await start(_state(doc))
    for _ in range(2):
        async with client.get(doc.path) as response:
            assert response.headers["Content-Length"] == str(doc.size)
            data, complete = await _read_partial(response)
        assert not complete
        assert data == doc.body[: doc.size // 2]


async def test_drop_after_then_resume_with_range(start: Start) -> None:
    """drop_after cuts the first response; a Range request for the rest completes the file."""
    doc = _doc(faults=Faults(drop_after=70_000))
    client = await start(_state(doc))
    async with client.get(doc.path) as response:
        head, complete = await _read_partial(response)
    assert not complete
    assert head == doc.body[:70_000]
    headers = {"Range": f"bytes={len(head)}-", "If-Range": doc.etag}
    async with client.get(doc.path, headers=headers) as response:
        assert response.status == 206
        tail = await response.read()
    assert hashlib.sha256(head + tail).hexdigest() == doc.sha256


async def test_redirect_chain_ends_at_the_file(start: Start) -> None:
    """redirects=3 is a chain of three 302s through /r/<n>/ that ends at the exact bytes."""
    doc = _doc(faults=Faults(redirects=3))
    state = _state(doc)
    client = await start(state)
    async with client.get(doc.path) as response:
        data = await response.read()
        assert [r.status for r in response.history] == [302, 302, 302]
        assert response.url.path == f"/r/0{doc.path}"
    assert hashlib.sha256(data).hexdigest() == doc.sha256
    hops = (doc.path, "/r/2/f/a.pdf", "/r/1/f/a.pdf", "/r/0/f/a.pdf")
    assert [state.hits[path] for path in hops] == [1, 1, 1, 1]


async def test_redirect_host_changes_the_last_hop(start: Start) -> None:
    """With redirect_host, only the last hop points to that host, on the same port."""
    doc = _doc(faults=Faults(redirects=2, redirect_host="localhost"))
    client = await start(_state(doc))
    port = client.make_url("/").port
    async with client.get(doc.path, allow_redirects=False) as response:
        first = URL(response.headers["Location"])
    async with client.get(first.path, allow_redirects=False) as response:
        last = URL(response.headers["Location"])
    assert (first.host, first.path) == ("127.0.0.1", "/r/1/f/a.pdf")
    assert (last.host, last.port, last.path) == ("localhost", port, "/r/0/f/a.pdf")


async def test_html_fault_and_status_fault(start: Start) -> None:
    """html serves a 200 login page; status is permanent; unknown paths are 404."""
    login = _doc("/f/login.pdf", faults=Faults(html=True))
    gone = _doc("/f/gone.pdf", faults=Faults(status=410))
    client = await start(_state(login, gone))
    async with client.get(login.path) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "Please log in" in await response.text()
    for path, status in ((gone.path, 410), (gone.path, 410), ("/f/nowhere.pdf", 404)):
        async with client.get(path) as response:
            assert response.status == status


@pytest.mark.parametrize(
    ("fault", "statuses"),
    [
        ("500", [500, 500]),
        ("500-once", [500, 200]),
        ("429-once", [429, 200]),
        ("bad-json", [200, 200]),
    ],
)
async def test_results_faults(start: Start, fault: str, statuses: list[int]) -> None:
    """results_fault breaks the results endpoint as documented."""
    client = await start(_state(_doc(), results_fault=fault))
    seen = []
    for _ in statuses:
        async with client.get(RESULTS, headers=AUTH) as response:
            seen.append(response.status)
            text = await response.text()
            if response.status == 429:
                assert response.headers["Retry-After"] == "1"
    assert seen == statuses
    if fault == "bad-json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)


async def test_bad_schema_results(start: Start) -> None:
    """bad-schema returns a document whose confidence_score is out of range."""
    client = await start(_state(_doc(), results_fault="bad-schema"))
    async with client.get(RESULTS, headers=AUTH) as response:
        body = await response.json()
    assert body["documents"][0]["confidence_score"] == 1.5


async def test_hits_and_log_record_requests(start: Start) -> None:
    """hits counts per path; the log keeps method, path, host and headers of every request."""
    doc = _doc()
    state = _state(doc)
    client = await start(state)
    async with client.get(RESULTS, headers=AUTH) as response:
        await response.read()
    async with client.get(doc.path, headers={"Range": "bytes=5-"}) as response:
        await response.read()
    assert state.hits[RESULTS] == 1
    assert state.hits[doc.path] == 1
    api, fetch = state.log
    assert (api.method, api.path, fetch.path) == ("GET", RESULTS, doc.path)
    assert api.header("authorization") == AUTH["Authorization"]
    assert fetch.header("Authorization") is None
    assert fetch.header("range") == "bytes=5-"
    assert fetch.host == f"127.0.0.1:{client.make_url('/').port}"
    assert state.records(doc.path) == [fetch]


async def test_state_changes_apply_to_the_next_request(start: Start) -> None:
    """Replacing a listing between runs changes what is served; reset() re-arms faults."""
    doc = _doc()
    state = _state(doc)
    client = await start(state)
    async with client.get(doc.path) as response:
        assert response.status == 200
    job = state.jobs[JOB]
    job.documents = [dataclasses.replace(doc, faults=Faults(fail_times=1))]
    state.reset()
    async with client.get(doc.path) as response:
        assert response.status == 500
    assert state.document(doc.path).faults.fail_times == 1


async def test_latency_stall_and_chunk_delay(start: Start) -> None:
    """Latency delays every document, stall only the first request, chunk_delay the stream."""
    doc = _doc(size=3 * 64 * 1024, faults=Faults(stall=0.15, chunk_delay=0.03))
    state = _state(doc)
    state.latency = 0.02
    client = await start(state)
    elapsed = []
    for _ in range(2):
        began = time.perf_counter()
        async with client.get(doc.path) as response:
            await response.read()
        elapsed.append(time.perf_counter() - began)
    assert elapsed[0] >= 0.15 + 0.02 + 2 * 0.03
    assert 0.02 + 2 * 0.03 <= elapsed[1] < elapsed[0]


async def test_serve_yields_a_base_url_on_an_ephemeral_port() -> None:
    """serve() binds 127.0.0.1 on a free port and stops on exit."""
    async with serve(_state(_doc())) as base, aiohttp.ClientSession() as session:
        url = URL(base)
        assert (url.scheme, url.host) == ("http", "127.0.0.1")
        assert url.port
        async with session.get(f"{base}/health/") as response:
            assert response.status == 200
