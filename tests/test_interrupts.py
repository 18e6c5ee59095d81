"""Stopping a run at any moment loses nothing: signals, kill -9, and a full disk."""

from __future__ import annotations

import asyncio
import hashlib
import signal
from pathlib import Path

from downloader.demo import DEMO_API_KEY, DemoDocument, Faults
from downloader.manifest import JOURNAL_NAME, MANIFEST_NAME, load_manifest
from tests.conftest import CliResult, Server, StartServer, listing, one_job, run_cli

KEY_ENV = {"SKOP_API_KEY": DEMO_API_KEY}
SLOW_SIZE = 1024 * 1024  # 16 chunks of 64 KiB at 0.1 s each: about 1.6 s to stream


def slow_job() -> list[DemoDocument]:
    """Three quick documents and one that streams slowly."""
    quick = [listing(f"/f/quick{i}.pdf", size=20_000) for i in range(3)]
    return [*quick, listing("/f/slow.pdf", size=SLOW_SIZE, faults=Faults(chunk_delay=0.1))]


async def run_and_signal(server: Server, out: Path, signum: int) -> CliResult:
    """Run a pull and send ``signum`` once the quick documents landed and the slow one streams."""

    async def send_when_streaming(process: asyncio.subprocess.Process) -> None:
        part = out / "slow.pdf.part"
        for _ in range(200):
            quick_done = all((out / f"quick{i}.pdf").exists() for i in range(3))
            if quick_done and part.exists() and part.stat().st_size >= 2 * 65536:
                break
            await asyncio.sleep(0.05)
        process.send_signal(signum)

    return await run_cli(
        "job_test1", "--api-url", server.url, "--out", out, env=KEY_ENV,
        on_started=send_when_streaming,
    )  # fmt: skip


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def assert_rerun_completes(server: Server, out: Path, documents: list[DemoDocument]) -> None:
    """A plain rerun fetches only the rest of the slow document, by Range, with no refetch."""
    hits_before = dict(server.state.hits)
    part_size = (out / "slow.pdf.part").stat().st_size
    result = await run_cli("job_test1", "--api-url", server.url, "--out", out, env=KEY_ENV)
    assert result.code == 0, result.stderr
    for i in range(3):
        assert server.state.hits[f"/f/quick{i}.pdf"] == hits_before[f"/f/quick{i}.pdf"]
    assert server.state.records("/f/slow.pdf")[-1].header("Range") == f"bytes={part_size}-"
    for document in documents:
        name = document.path.rsplit("/", 1)[-1]
        assert sha256_of(out / name) == document.sha256
    assert not list(out.glob("*.part*"))
    assert not (out / JOURNAL_NAME).exists()


async def test_sigint_exits_130_keeps_parts_and_the_next_run_completes(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Ctrl-C: exit 130, a valid manifest, the .part kept, and a rerun resumes it."""
    documents = slow_job()
    server = await start_server(one_job(*documents))
    result = await run_and_signal(server, tmp_path, signal.SIGINT)
    assert result.code == 130, result.stderr
    assert "interrupted by SIGINT" in result.stderr
    assert "Traceback" not in result.stderr
    assert "1 not attempted" in result.stdout or "3 downloaded" in result.stdout
    manifest = load_manifest(tmp_path)
    assert {e.status for e in manifest.documents.values()} == {"downloaded"}
    assert len(manifest.documents) == 3
    assert (tmp_path / "slow.pdf.part").exists()
    assert not (tmp_path / "slow.pdf").exists()
    await assert_rerun_completes(server, tmp_path, documents)


async def test_sigterm_exits_143(start_server: StartServer, tmp_path: Path) -> None:
    """SIGTERM (what schedulers send) stops the run the same way, with exit 143."""
    server = await start_server(one_job(*slow_job()))
    result = await run_and_signal(server, tmp_path, signal.SIGTERM)
    assert result.code == 143, result.stderr
    assert "interrupted by SIGTERM" in result.stderr
    assert (tmp_path / MANIFEST_NAME).exists()


async def test_sigkill_then_rerun_refetches_nothing_finished(
    start_server: StartServer, tmp_path: Path
) -> None:
    """After kill -9 mid-download, the journal keeps finished documents and the part resumes."""
    documents = slow_job()
    server = await start_server(one_job(*documents))
    result = await run_and_signal(server, tmp_path, signal.SIGKILL)
    assert result.code == -signal.SIGKILL
    assert not (tmp_path / MANIFEST_NAME).exists()
    assert (tmp_path / JOURNAL_NAME).exists()
    assert not (tmp_path / "slow.pdf").exists()
    await assert_rerun_completes(server, tmp_path, documents)


async def test_full_disk_stops_cleanly(start_server: StartServer, tmp_path: Path) -> None:
    """When writes fail for lack of space: exit 1, a clear message, no partial final file."""
    big = listing("/f/big.pdf", size=3 * 1024 * 1024)
    small = [listing(f"/f/small{i}.pdf", size=10_000) for i in range(3)]
    server = await start_server(one_job(big, *small))
    result = await run_cli(
        "job_test1", "--api-url", server.url, "--out", tmp_path, "--concurrency", "1",
        env=KEY_ENV, max_file_size=1024 * 1024,
    )  # fmt: skip
    assert result.code == 1, result.stderr
    assert "stopped early, the disk is full" in result.stderr
    assert "Traceback" not in result.stderr
    manifest = load_manifest(tmp_path)
    assert manifest.documents[f"{server.url}/f/big.pdf"].status == "failed"
    assert not (tmp_path / "big.pdf").exists()
    assert not list(tmp_path.glob("*.part"))
    rerun = await run_cli("job_test1", "--api-url", server.url, "--out", tmp_path, env=KEY_ENV)
    assert rerun.code == 0, rerun.stderr
    assert sha256_of(tmp_path / "big.pdf") == big.sha256


async def test_claimed_sizes_beyond_free_space_stop_before_downloading(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A job claiming more than the free space is refused up front, unless told otherwise."""
    huge = listing("/f/huge.pdf", size=1000)
    huge = type(huge)(**{**huge.__dict__, "claimed_size_mb": 1e9})
    server = await start_server(one_job(huge))
    refused = await run_cli("job_test1", "--api-url", server.url, "--out", tmp_path, env=KEY_ENV)
    assert refused.code == 2
    assert "free some space" in refused.stderr
    assert server.document_hits() == 0
    forced = await run_cli(
        "job_test1", "--api-url", server.url, "--out", tmp_path, "--no-space-check", env=KEY_ENV
    )
    assert forced.code == 0, forced.stderr
