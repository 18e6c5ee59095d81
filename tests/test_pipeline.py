"""End to end through the library: real HTTP to the bundled server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from downloader.demo import DEMO_JOB_ID, DemoJob, Faults
from downloader.errors import AuthError
from downloader.job import pull
from downloader.lock import LOCK_NAME
from downloader.manifest import MANIFEST_NAME, Manifest, load_manifest
from tests.conftest import Server, StartServer, fast_settings, listing, one_job


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file on disk."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> set[Path]:
    """Every file below ``root``."""
    return {path for path in root.rglob("*") if path.is_file()}


async def test_demo_job_lands_verified(demo: Server, tmp_path: Path) -> None:
    """Every selected document is on disk with the server's sha256, recorded in the manifest."""
    out = tmp_path / "out"
    summary = await pull(jobs=[DEMO_JOB_ID], settings=fast_settings(demo, out, min_confidence=0.8))
    job = demo.state.jobs[DEMO_JOB_ID]
    expected = {f"{demo.url}{d.path}": d for d in job.documents if d.confidence_score >= 0.8}
    manifest = Manifest.model_validate_json((out / MANIFEST_NAME).read_bytes())
    assert summary.exit_code == 0
    assert set(manifest.documents) == set(expected)
    assert summary.downloaded == len(expected) == summary.selected
    for url, document in expected.items():
        entry = manifest.documents[url]
        assert entry.status == "downloaded"
        assert entry.path is not None
        assert entry.sha256 == document.sha256 == sha256_of(out / entry.path)
        assert entry.size == len(document.body)
    own = {out / MANIFEST_NAME, out / LOCK_NAME}
    assert files_under(out) == own | {out / e.path for e in manifest.documents.values() if e.path}


async def test_manifest_records_job_and_selection(demo: Server, tmp_path: Path) -> None:
    """The manifest keeps the job's summary fields and the selection that was applied."""
    settings = fast_settings(demo, tmp_path, min_confidence=0.5, type=("pdf", "docx"))
    await pull(jobs=[DEMO_JOB_ID], settings=settings)
    manifest = load_manifest(tmp_path)
    record = manifest.jobs[DEMO_JOB_ID]
    assert record.status == "completed"
    assert record.cost is not None
    assert record.total_documents_found is not None
    assert manifest.selection is not None
    assert manifest.selection.types == ("pdf", "docx")
    assert {e.document_type for e in manifest.documents.values()} <= {"pdf", "docx"}


async def test_duplicate_url_downloaded_once_with_all_source_pages(
    demo: Server, tmp_path: Path
) -> None:
    """A URL listed from two pages is fetched once and keeps both source pages."""
    job = demo.state.jobs[DEMO_JOB_ID]
    paths = [d.path for d in job.documents]
    duplicate = next(p for p in paths if paths.count(p) > 1)
    await pull(jobs=[DEMO_JOB_ID], settings=fast_settings(demo, tmp_path))
    entry = load_manifest(tmp_path).documents[f"{demo.url}{duplicate}"]
    pages = {
        f"{demo.url}{d.source_page}" if d.source_page.startswith("/") else d.source_page
        for d in job.documents
        if d.path == duplicate
    }
    assert len(entry.source_pages) == len(pages) >= 2
    assert demo.state.hits[duplicate] == 1


async def test_hostile_names_stay_inside_out(start_server: StartServer, tmp_path: Path) -> None:
    """'../../etc/passwd' and two documents named alike land as distinct files inside out."""
    server = await start_server(
        one_job(
            listing("/f/passwd", document_type="txt", size=100, name="../../etc/passwd"),
            listing("/f/a.pdf", size=3000, name="Annual Report"),
            listing("/f/b.pdf", size=4000, name="Annual Report"),
        )
    )
    out = tmp_path / "deep" / "out"
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, out))
    assert summary.exit_code == 0
    paths = {entry.path for entry in load_manifest(out).documents.values()}
    assert len(paths) == 3
    assert files_under(tmp_path) == files_under(out)
    assert all(p is not None and "/" not in p and not p.startswith(".") for p in paths)
    assert "Annual Report.pdf" in paths


async def test_short_body_leaves_no_final_file(start_server: StartServer, tmp_path: Path) -> None:
    """A body shorter than its Content-Length is a failure: no file, a reason, exit 1."""
    server = await start_server(
        one_job(
            listing("/f/short.pdf", size=200_000, faults=Faults(short_body=True)),
            listing("/f/good.pdf", size=5000),
        )
    )
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path, retries=1))
    manifest = load_manifest(tmp_path)
    short = manifest.documents[f"{server.url}/f/short.pdf"]
    assert summary.exit_code == 1
    assert (summary.downloaded, summary.failed) == (1, 1)
    assert short.status == "failed"
    assert short.error is not None
    assert "/f/short.pdf" in short.error
    assert not (tmp_path / "short.pdf").exists()
    assert (tmp_path / "short.pdf.part").exists()  # kept: the next run resumes it
    assert (tmp_path / "good.pdf").exists()
    assert server.state.hits["/f/short.pdf"] == 2  # first try + one retry


async def test_permanent_404_is_recorded_not_retried(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A 404 fails at once with an httpx-style message; the other documents land."""
    server = await start_server(
        one_job(
            listing("/f/gone.pdf", size=1000, faults=Faults(status=404)),
            listing("/f/ok.txt", document_type="txt", size=1000),
        )
    )
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    url = f"{server.url}/f/gone.pdf"
    assert summary.failures[0].error == f"404 Not Found for url '{url}'"
    assert server.state.hits["/f/gone.pdf"] == 1
    assert load_manifest(tmp_path).documents[url].status == "failed"


async def test_transient_500_is_retried(start_server: StartServer, tmp_path: Path) -> None:
    """A document that answers 500 twice then 200 lands after two retries."""
    document = listing("/f/flaky.pdf", size=9000, faults=Faults(fail_times=2))
    server = await start_server(one_job(document))
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert summary.exit_code == 0
    assert server.state.hits["/f/flaky.pdf"] == 3
    assert sha256_of(tmp_path / "flaky.pdf") == document.sha256


async def test_redirects_followed_and_key_never_sent_to_document_hosts(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A redirect chain to another host is followed; no document request carries the key."""
    document = listing(
        "/f/moved.pdf", size=7000, faults=Faults(redirects=3, redirect_host="localhost")
    )
    server = await start_server(one_job(document))
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    entry = load_manifest(tmp_path).documents[f"{server.url}/f/moved.pdf"]
    assert summary.exit_code == 0
    assert entry.sha256 == document.sha256
    assert entry.final_url is not None
    assert entry.final_url.startswith("http://localhost:")
    api = [r for r in server.state.log if r.path.startswith("/scrape")]
    documents = [r for r in server.state.log if not r.path.startswith("/scrape")]
    assert api
    assert all("Authorization" in r.headers for r in api)
    assert len(documents) >= 4
    assert not any(
        k.lower() in {"authorization", "x-api-key"} for r in documents for k in r.headers
    )


async def test_max_size_is_enforced_on_received_bytes(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A document that claims to be small but is large fails past --max-size-mb."""
    liar = listing("/f/liar.pdf", size=3 * 1024 * 1024)
    liar = type(liar)(**{**liar.__dict__, "claimed_size_mb": 0.1})
    server = await start_server(one_job(liar))
    summary = await pull(
        jobs=["job_test1"], settings=fast_settings(server, tmp_path, max_size_mb=1)
    )
    assert summary.failed == 1
    assert "larger than --max-size-mb 1" in summary.failures[0].error
    assert not (tmp_path / "liar.pdf").exists()


async def test_second_run_requests_no_documents(demo: Server, tmp_path: Path) -> None:
    """Documents already on disk with their recorded size are not fetched again."""
    settings = fast_settings(demo, tmp_path)
    first = await pull(jobs=[DEMO_JOB_ID], settings=settings)
    before = demo.document_hits()
    second = await pull(jobs=[DEMO_JOB_ID], settings=settings)
    assert first.downloaded > 0
    assert second.downloaded == 0
    assert second.already_present == first.downloaded
    assert demo.document_hits() == before


async def test_damaged_file_is_fetched_again(demo: Server, tmp_path: Path) -> None:
    """A file whose size no longer matches the manifest is downloaded again, same name."""
    settings = fast_settings(demo, tmp_path, type=("pdf",))
    await pull(jobs=[DEMO_JOB_ID], settings=settings)
    url, entry = next(iter(load_manifest(tmp_path).documents.items()))
    assert entry.path is not None
    (tmp_path / entry.path).write_bytes(b"truncated")
    second = await pull(jobs=[DEMO_JOB_ID], settings=settings)
    assert second.downloaded == 1
    assert sha256_of(tmp_path / entry.path) == entry.sha256
    assert load_manifest(tmp_path).documents[url].path == entry.path


async def test_dry_run_downloads_nothing(demo: Server, tmp_path: Path) -> None:
    """--dry-run plans names and paths but makes no document request and writes nothing."""
    out = tmp_path / "out"
    summary = await pull(jobs=[DEMO_JOB_ID], settings=fast_settings(demo, out), dry_run=True)
    assert summary.planned
    assert len(summary.planned) == summary.selected
    assert demo.document_hits() == 0
    assert not out.exists()


async def test_wrong_key_is_an_auth_error(demo: Server, tmp_path: Path) -> None:
    """A key the server rejects raises AuthError (exit 3) with the server's message."""
    with pytest.raises(AuthError, match="401") as info:
        await pull(jobs=[DEMO_JOB_ID], settings=fast_settings(demo, tmp_path, api_key="sk-wrong0"))
    assert info.value.exit_code == 3
    assert "wrong0" not in str(info.value)


async def test_unfinished_job_in_a_batch_does_not_stop_the_others(
    demo: Server, tmp_path: Path
) -> None:
    """A running job is reported (exit 4) while a completed job in the same run lands."""
    demo.state.jobs["job_running1"] = DemoJob(
        job_id="job_running1", documents=[], status="in_progress"
    )
    summary = await pull(jobs=["job_running1", DEMO_JOB_ID], settings=fast_settings(demo, tmp_path))
    running = summary.jobs[0]
    assert running.exit_code == 4
    assert running.error is not None
    assert "job_running1 is in_progress" in running.error
    assert summary.downloaded > 0
    assert summary.exit_code == 4
