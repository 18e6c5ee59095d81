"""Scheduled batch pulls: many jobs, only what is new, what changed, waiting and locking."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sys
from pathlib import Path

import pytest

import downloader
from downloader.demo import DEMO_API_KEY, DemoDocument, DemoJob, DemoState
from downloader.errors import FolderLocked
from downloader.job import pull
from downloader.lock import folder_lock
from downloader.manifest import load_manifest
from tests.conftest import Server, StartServer, fast_settings, listing, one_job, run_cli

KEY_ENV = {"SKOP_API_KEY": DEMO_API_KEY}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def crawl(job_id: str, *documents: DemoDocument) -> DemoJob:
    """A completed job of the same website listing ``documents``."""
    return DemoJob(job_id=job_id, documents=list(documents), website="https://city.example")


async def test_second_run_makes_no_document_request(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Re-running a job: zero document requests, 0 new, everything unchanged."""
    server = await start_server(one_job(*(listing(f"/f/d{i}.pdf") for i in range(5))))
    first = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    before = server.document_hits()
    second = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert first.counts.new == 5
    assert server.document_hits() == before
    assert (second.counts.new, second.counts.unchanged) == (0, 5)
    assert [run.counts.new for run in load_manifest(tmp_path).runs] == [5, 0]


async def test_recrawl_with_refresh_reports_new_gone_changed(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A new crawl of the site: 2 added, 1 removed, 1 changed, and the folder matches it."""
    kept = [listing(f"/f/kept{i}.pdf") for i in range(2)]
    old, removed = listing("/f/changing.pdf", size=5000), listing("/f/removed.pdf")
    server = await start_server(DemoState(jobs=[crawl("job_night1", *kept, old, removed)]))
    await pull(jobs=["job_night1"], settings=fast_settings(server, tmp_path))
    new = listing("/f/changing.pdf", size=6000)
    added = [listing(f"/f/added{i}.pdf") for i in range(2)]
    server.state.jobs = {"job_night2": crawl("job_night2", *kept, new, *added)}
    summary = await pull(
        jobs=["job_night2"], settings=fast_settings(server, tmp_path, refresh=True)
    )
    counts = summary.counts
    assert (counts.new, counts.gone, counts.changed, counts.unchanged) == (2, 1, 1, 2)
    assert summary.jobs[0].counts == counts
    manifest = load_manifest(tmp_path)
    for document in [*kept, new, *added]:
        entry = manifest.documents[f"{server.url}{document.path}"]
        assert entry.path is not None
        assert sha256_of(tmp_path / entry.path) == document.sha256
    assert manifest.documents[f"{server.url}/f/removed.pdf"].gone_at is not None


async def test_refresh_revalidates_without_downloading(
    start_server: StartServer, tmp_path: Path
) -> None:
    """--refresh sends conditional requests; unchanged documents answer 304."""
    server = await start_server(one_job(listing("/f/a.pdf"), listing("/f/b.pdf")))
    await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path, refresh=True))
    assert summary.counts.unchanged == 2
    assert summary.bytes == 0
    assert server.state.records("/f/a.pdf")[-1].header("If-None-Match") is not None


async def test_verify_rehashes_and_repairs(start_server: StartServer, tmp_path: Path) -> None:
    """--verify finds a same-size corruption the size check cannot, and fetches again."""
    document = listing("/f/a.pdf", size=5000)
    server = await start_server(one_job(document))
    await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    (tmp_path / "a.pdf").write_bytes(b"x" * 5000)
    plain = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert plain.counts.unchanged == 1
    verified = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path, verify=True))
    assert verified.downloaded == 1
    assert sha256_of(tmp_path / "a.pdf") == document.sha256


async def test_unfinished_job_in_batch_exits_4_and_others_land(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Three jobs, one still running: the other two land, the exit code is 4."""
    state = DemoState(
        jobs=[
            DemoJob(job_id="job_a1", documents=[listing("/f/a.pdf")]),
            DemoJob(job_id="job_b1", documents=[], status="in_progress"),
            DemoJob(job_id="job_c1", documents=[listing("/f/c.pdf")]),
        ]
    )
    server = await start_server(state)
    result = await run_cli(
        "job_a1", "job_b1", "job_c1", "--api-url", server.url, "-o", tmp_path, "--json",
        env=KEY_ENV,
    )  # fmt: skip
    summary = json.loads(result.stdout)
    assert result.code == 4
    assert [job["exit_code"] for job in summary["jobs"]] == [0, 4, 0]
    assert (tmp_path / "a.pdf").exists()
    assert (tmp_path / "c.pdf").exists()


async def test_document_listed_by_two_jobs_is_stored_once(
    start_server: StartServer, tmp_path: Path
) -> None:
    """The same URL found by two jobs is downloaded once and lists both jobs."""
    shared = listing("/f/shared.pdf")
    state = DemoState(
        jobs=[
            DemoJob(job_id="job_a1", documents=[shared, listing("/f/a.pdf")]),
            DemoJob(job_id="job_b1", documents=[shared]),
        ]
    )
    server = await start_server(state)
    summary = await pull(jobs=["job_a1", "job_b1"], settings=fast_settings(server, tmp_path))
    entry = load_manifest(tmp_path).documents[f"{server.url}/f/shared.pdf"]
    assert server.state.hits["/f/shared.pdf"] == 1
    assert entry.job_ids == ["job_a1", "job_b1"]
    assert [job.counts.new for job in summary.jobs] == [2, 1]


async def test_layouts(start_server: StartServer, tmp_path: Path) -> None:
    """--layout job and --layout type put files in per-job and per-type folders."""
    state = DemoState(
        jobs=[
            DemoJob(job_id="job_a1", documents=[listing("/f/a.pdf")]),
            DemoJob(job_id="job_b1", documents=[listing("/f/b.txt", document_type="TXT")]),
        ]
    )
    server = await start_server(state)
    jobs = ["job_a1", "job_b1"]
    await pull(jobs=jobs, settings=fast_settings(server, tmp_path / "j", layout="job"))
    await pull(jobs=jobs, settings=fast_settings(server, tmp_path / "t", layout="type"))
    assert (tmp_path / "j" / "job_a1" / "a.pdf").exists()
    assert (tmp_path / "j" / "job_b1" / "b.txt").exists()
    assert (tmp_path / "t" / "pdf" / "a.pdf").exists()
    assert (tmp_path / "t" / "txt" / "b.txt").exists()
    paths = {e.path for e in load_manifest(tmp_path / "t").documents.values()}
    assert paths == {"pdf/a.pdf", "txt/b.txt"}


async def test_jobs_file_with_comments_and_stdin(start_server: StartServer, tmp_path: Path) -> None:
    """--jobs-file reads ids one per line with # comments, from a file or from stdin."""
    server = await start_server(one_job(listing("/f/a.pdf"), job_id="job_file1"))
    jobs_file = tmp_path / "jobs.txt"
    jobs_file.write_text("# nightly\njob_file1  # the city site\n\n")
    out = tmp_path / "out"
    result = await run_cli(
        "--jobs-file", jobs_file, "--api-url", server.url, "-o", out, env=KEY_ENV
    )
    assert result.code == 0, result.stderr
    assert (out / "a.pdf").exists()
    piped = await run_cli(
        "--jobs-file", "-", "--api-url", server.url, "-o", tmp_path / "piped", env=KEY_ENV,
        stdin=b"job_file1\n# done\n",
    )  # fmt: skip
    assert piped.code == 0, piped.stderr
    assert (tmp_path / "piped" / "a.pdf").exists()
    missing = await run_cli("--jobs-file", tmp_path / "nope.txt", "-o", out, env=KEY_ENV)
    assert missing.code == 2
    assert "cannot read --jobs-file" in missing.stderr


async def test_locked_folder_refuses_a_second_run(demo: Server, tmp_path: Path) -> None:
    """A run on a folder another run holds exits 5; --wait-lock waits for it instead."""
    args = ("job_4fc79a89797e", "--api-url", demo.url, "-o", tmp_path)
    async with folder_lock(tmp_path):
        refused = await run_cli(*args, env=KEY_ENV)
        assert refused.code == 5
        assert "another fetch-docs (pid" in refused.stderr
        assert demo.document_hits() == 0
        waiting = asyncio.ensure_future(run_cli(*args, "--wait-lock", env=KEY_ENV))
        await asyncio.sleep(1.0)
        assert not waiting.done()
    result = await waiting
    assert result.code == 0, result.stderr


async def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    """A lock whose holder died (kill -9) does not block the next run."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import asyncio, sys; from pathlib import Path; from downloader.lock import folder_lock\n"
        "async def main():\n"
        "    async with folder_lock(Path(sys.argv[1])):\n"
        "        print('locked', flush=True); await asyncio.sleep(60)\n"
        "asyncio.run(main())",
        str(tmp_path), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"locked\n"
    with pytest.raises(FolderLocked):
        async with folder_lock(tmp_path):
            pass
    holder.kill()
    await holder.wait()
    async with folder_lock(tmp_path):
        pass


async def test_wait_polls_until_completed(start_server: StartServer, tmp_path: Path) -> None:
    """--wait polls the status at the configured interval until the job completes."""
    job = DemoJob(
        job_id="job_slow1",
        documents=[listing("/f/a.pdf")],
        status="in_progress",
        completes_after_polls=3,
    )
    server = await start_server(DemoState(jobs=[job]))
    settings = fast_settings(server, tmp_path, wait=True, wait_interval=0.3)
    summary = await pull(jobs=["job_slow1"], settings=settings)
    polls = [r.at for r in server.state.records("/scrape/status/job_slow1")]
    assert summary.exit_code == 0
    assert len(polls) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert all(gap >= 0.3 * 0.8 - 0.01 for gap in gaps), gaps  # never faster than asked
    assert all(gap < 5.0 for gap in gaps), gaps  # and not stuck


async def test_wait_obeys_429_on_status(start_server: StartServer, tmp_path: Path) -> None:
    """A 429 with Retry-After on the status endpoint is waited out before the next poll."""
    job = DemoJob(job_id="job_busy1", documents=[listing("/f/a.pdf")], status_fault="429-once")
    server = await start_server(DemoState(jobs=[job]))
    settings = fast_settings(server, tmp_path, wait=True, wait_interval=0.1)
    summary = await pull(jobs=["job_busy1"], settings=settings)
    first, second = (r.at for r in server.state.records("/scrape/status/job_busy1")[:2])
    assert summary.exit_code == 0
    assert second - first >= 1.0


async def test_wait_timeout_gives_up_with_exit_4(start_server: StartServer, tmp_path: Path) -> None:
    """A job still running at --wait-timeout is reported not ready."""
    job = DemoJob(job_id="job_stuck1", documents=[], status="in_progress")
    server = await start_server(DemoState(jobs=[job]))
    settings = fast_settings(server, tmp_path, wait=True, wait_interval=0.2, wait_timeout=0.5)
    summary = await pull(jobs=["job_stuck1"], settings=settings)
    assert summary.exit_code == 4
    assert "still in_progress after --wait-timeout 0.5 s" in (summary.jobs[0].error or "")


def test_library_exports_pull() -> None:
    """The package exposes the async and sync entry points and the settings model."""
    assert downloader.pull is pull
    assert callable(downloader.pull_sync)
    assert downloader.Settings.__name__ == "Settings"
