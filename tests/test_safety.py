"""Crawled sites choose the URLs: some must never be fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from downloader.demo import DemoDocument, Faults
from downloader.job import pull
from downloader.manifest import load_manifest
from tests.conftest import StartServer, fast_settings, listing, one_job


def listed_as(document: DemoDocument, url: str) -> DemoDocument:
    """``document`` listed under a URL other than the server's own."""
    return type(document)(**{**document.__dict__, "listed_url": url})


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a"),
        ("http://[fe80::1]/doc.pdf", "fe80::1 is a"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a"),
        ("file:///etc/passwd", "only absolute http and https urls"),
        ("ftp://example.org/doc.pdf", "only absolute http and https urls"),
        ("not a url", "only absolute http and https urls"),
    ],
)
async def test_refused_urls_fail_without_a_request(
    start_server: StartServer, tmp_path: Path, url: str, reason: str
) -> None:
    """Link-local, metadata and non-http URLs are refused and recorded, the rest lands."""
    server = await start_server(
        one_job(listed_as(listing("/f/evil.pdf"), url), listing("/f/ok.pdf"))
    )
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert summary.failed == 1
    assert reason in summary.failures[0].error
    assert (tmp_path / "ok.pdf").exists()
    assert load_manifest(tmp_path).documents[url].status == "failed"


async def test_redirect_to_metadata_address_is_refused(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A redirect hop to 169.254.169.254 is refused before any connection to it."""
    document = listing("/f/hop.pdf", faults=Faults(redirects=2, redirect_host="169.254.169.254"))
    server = await start_server(one_job(document))
    summary = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert "169.254.169.254 is a" in summary.failures[0].error
    assert server.state.hits["/f/hop.pdf"] == 1


async def test_public_only_refuses_loopback_documents(
    start_server: StartServer, tmp_path: Path
) -> None:
    """--public-only refuses a document host resolving to loopback; the API host stays usable."""
    server = await start_server(one_job(listing("/f/local.pdf")))
    port = server.url.rsplit(":", 1)[1]
    local = listed_as(listing("/f/local.pdf"), f"http://localhost:{port}/f/local.pdf")
    server.state.jobs["job_test1"].documents = [local]
    settings = fast_settings(server, tmp_path, public_only=True)
    summary = await pull(jobs=["job_test1"], settings=settings)
    assert summary.failed == 1
    assert "localhost resolves to" in summary.failures[0].error
    assert server.state.hits["/f/local.pdf"] == 0
    default = await pull(jobs=["job_test1"], settings=fast_settings(server, tmp_path))
    assert default.downloaded == 1
