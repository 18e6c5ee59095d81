"""A hostile web: one job whose documents exercise every fault, and resumes across runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from downloader.demo import DemoDocument, Faults
from downloader.job import pull
from downloader.manifest import load_manifest
from tests.conftest import StartServer, fast_settings, listing, one_job

READ_TIMEOUT = 1.0
RETRIES = 3
SIZE = 300_000


def hostile_documents() -> dict[str, DemoDocument]:
    """Documents by fault: recoverable ones first, then permanent failures."""
    return {
        "500-once": listing("/f/flaky.pdf", size=SIZE, faults=Faults(fail_times=1)),
        "429-once": listing(
            "/f/limited.pdf", size=SIZE, faults=Faults(rate_limit_times=1, retry_after="1")
        ),
        "dropped": listing("/f/dropped.pdf", size=SIZE, faults=Faults(drop_after=SIZE // 2)),
        "stall": listing("/f/stall.pdf", size=SIZE, faults=Faults(stall=READ_TIMEOUT + 1.0)),
        "redirects": listing("/f/moved.pdf", size=SIZE, faults=Faults(redirects=3)),
        "passwd": listing("/f/passwd.txt", document_type="txt", name="../../etc/passwd"),
        "twin-a": listing("/f/twin-a.pdf", name="Minutes"),
        "twin-b": listing("/f/twin-b.pdf", name="Minutes"),
        "404": listing("/f/gone.pdf", faults=Faults(status=404)),
        "html": listing("/f/login.pdf", faults=Faults(html=True)),
        "short": listing("/f/short.pdf", size=SIZE, faults=Faults(short_body=True)),
    }


PERMANENT = {"404", "html", "short"}


async def test_every_fault_in_one_job(start_server: StartServer, tmp_path: Path) -> None:
    """Recoverable documents land intact, permanent failures are recorded, exit 1."""
    documents = hostile_documents()
    server = await start_server(one_job(*documents.values()))
    out = tmp_path / "out"
    settings = fast_settings(server, out, retries=RETRIES, read_timeout=READ_TIMEOUT)
    summary = await pull(jobs=["job_test1"], settings=settings)
    manifest = load_manifest(out)
    assert summary.exit_code == 1
    for label, document in documents.items():
        entry = manifest.documents[f"{server.url}{document.path}"]
        if label in PERMANENT:
            assert entry.status == "failed", label
            assert entry.error, label
        else:
            assert entry.status == "downloaded", (label, entry.error)
            assert entry.path is not None
            assert hashlib.sha256((out / entry.path).read_bytes()).hexdigest() == document.sha256
    assert {p for p in tmp_path.rglob("*") if p.is_file()} <= set(out.rglob("*"))
    kept_parts = {p.name for p in out.glob("*.part")}
    assert kept_parts <= {"short.pdf.part"}  # kept to resume: short bodies are retryable


async def test_retries_follow_the_policy(start_server: StartServer, tmp_path: Path) -> None:
    """The server sees exactly the tries the policy allows, and Retry-After is waited out."""
    documents = hostile_documents()
    server = await start_server(one_job(*documents.values()))
    settings = fast_settings(server, tmp_path, retries=RETRIES, read_timeout=READ_TIMEOUT)
    await pull(jobs=["job_test1"], settings=settings)
    hits = server.state.hits
    assert hits["/f/flaky.pdf"] == 2
    assert hits["/f/dropped.pdf"] == 2
    assert hits["/f/stall.pdf"] == 2
    assert hits["/f/gone.pdf"] == 1
    assert hits["/f/login.pdf"] == 1
    assert hits["/f/short.pdf"] == RETRIES + 1
    limited = server.state.records("/f/limited.pdf")
    assert len(limited) == 2
    assert limited[1].at - limited[0].at >= 1.0


async def test_dropped_download_resumes_with_range(
    start_server: StartServer, tmp_path: Path
) -> None:
    """After a connection drops halfway, the retry asks only for the rest (Range + If-Range)."""
    document = listing("/f/dropped.pdf", size=SIZE, faults=Faults(drop_after=SIZE // 2))
    server = await start_server(one_job(document))
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    first, second = server.state.records("/f/dropped.pdf")
    assert first.header("Range") is None
    assert second.header("Range") == f"bytes={SIZE // 2}-"
    assert second.header("If-Range") is not None
    assert summary.bytes == SIZE
    assert (
        load_manifest(tmp_path).documents[f"{server.url}/f/dropped.pdf"].sha256 == document.sha256
    )


async def test_next_run_resumes_a_kept_part(start_server: StartServer, tmp_path: Path) -> None:
    """A part left by a failed run is continued by the next run, not restarted."""
    document = listing("/f/big.pdf", size=SIZE, faults=Faults(drop_after=SIZE // 3))
    server = await start_server(one_job(document))
    failed = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path, retries=0))
    assert failed.failed == 1
    assert (tmp_path / "big.pdf.part").stat().st_size == SIZE // 3
    resumed = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert resumed.downloaded == 1
    assert server.state.records("/f/big.pdf")[-1].header("Range") == f"bytes={SIZE // 3}-"
    assert hashlib.sha256((tmp_path / "big.pdf").read_bytes()).hexdigest() == document.sha256
    assert not (tmp_path / "big.pdf.part").exists()


async def test_changed_document_restarts_from_zero(
    start_server: StartServer, tmp_path: Path
) -> None:
    """If the document changed since the part was written, If-Range gets a 200 and a fresh file."""
    old = listing("/f/doc.pdf", size=SIZE, faults=Faults(drop_after=SIZE // 2))
    server = await start_server(one_job(old))
    await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path, retries=0))
    new = listing("/f/doc.pdf", size=SIZE + 1000, name="doc")
    server.state.jobs["job_test1"].documents = [new]
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert summary.downloaded == 1
    assert hashlib.sha256((tmp_path / "doc.pdf").read_bytes()).hexdigest() == new.sha256


async def test_html_instead_of_pdf_fails_unless_kept(
    start_server: StartServer, tmp_path: Path
) -> None:
    """An HTML page served as a pdf fails with a clear reason; --keep-mismatched keeps it."""
    server = await start_server(one_job(listing("/f/login.pdf", faults=Faults(html=True))))
    refused = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path / "a"))
    assert "the server sent an HTML page, not a pdf" in refused.failures[0].error
    assert not (tmp_path / "a" / "login.pdf").exists()
    kept = await pull(
        jobs=["job_test1"], settings=fast_settings(server, tmp_path / "b", keep_mismatched=True)
    )
    entry = load_manifest(tmp_path / "b").documents[f"{server.url}/f/login.pdf"]
    assert kept.exit_code == 0
    assert kept.mismatched == 1
    assert (entry.detected_type, entry.type_mismatch) == ("html", True)


async def test_detected_type_is_recorded(start_server: StartServer, tmp_path: Path) -> None:
    """Each entry records the type sniffed from the bytes next to the claimed one."""
    server = await start_server(
        one_job(listing("/f/a.pdf"), listing("/f/b.docx", document_type="docx", size=5000))
    )
    await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    detected = {
        e.document_type: e.detected_type for e in load_manifest(tmp_path).documents.values()
    }
    assert detected == {"pdf": "pdf", "docx": "docx"}


async def test_rate_limited_host_is_paused_for_everyone(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A 429 with Retry-After holds back the host's other downloads, not other hosts'."""
    limited = listing("/f/limited.pdf", faults=Faults(rate_limit_times=1, retry_after="1"))
    others = [listing(f"/f/other{i}.pdf", faults=Faults(latency=0.3)) for i in range(4)]
    server = await start_server(one_job(limited, *others))
    port = server.url.rsplit(":", 1)[1]
    elsewhere = [
        listed_at(listing(f"/f/away{i}.pdf", faults=Faults(latency=0.3)), f"localhost:{port}")
        for i in range(3)
    ]
    server.state.jobs["job_test1"].documents = [limited, *others, *elsewhere]
    await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path, per_host=1))
    first_429 = server.state.records("/f/limited.pdf")[0].at
    log = server.state.log
    same_host = [r.at for r in log if r.path.startswith("/f/other") and r.at > first_429]
    other_host = [r.at for r in log if r.path.startswith("/f/away")]
    assert same_host
    assert min(same_host) - first_429 >= 0.9
    assert any(first_429 < at < first_429 + 0.9 for at in other_host)


def listed_at(document: DemoDocument, host: str) -> DemoDocument:
    """``document`` listed under another host name for the same server."""
    return type(document)(**{**document.__dict__, "listed_url": f"http://{host}{document.path}"})
