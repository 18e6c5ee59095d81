"""Start ``server.py`` in its own process and talk to it (listing, hit counter, speed)."""

from __future__ import annotations

import json
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

from scenarios import BLOB_PATH
from tools import BENCH

from downloader.demo import DEMO_API_KEY

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


@dataclass(frozen=True)
class Server:
    """A running demo server, seen from the bench."""

    base_url: str

    def get(self, path: str, *, timeout: float = 120.0) -> bytes:
        """GET a path with the demo key (the key only matters for the API routes)."""
        request = urllib.request.Request(
            self.base_url + path, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
        )
        with _OPENER.open(request, timeout=timeout) as response:
            return cast(bytes, response.read())

    def hits(self) -> int:
        """Requests received on document paths so far."""
        return int(json.loads(self.get("/__hits"))["documents"])

    def listing(self, job_id: str) -> list[dict[str, Any]]:
        """The ``documents`` of the job's Skop results body."""
        body = json.loads(self.get(f"/scrape/results/{job_id}"))
        return cast(list[dict[str, Any]], body["documents"])

    def curl_metric(self, path: str, metric: str, *, runs: int = 3) -> float | None:
        """Median of a curl ``-w`` metric over ``runs`` downloads of ``path`` to /dev/null."""
        if shutil.which("curl") is None:
            return None
        values = []
        for _ in range(runs):
            done = subprocess.run(
                [
                    "curl",
                    "-s",
                    "--fail",
                    "--noproxy",
                    "*",
                    "-o",
                    "/dev/null",
                    "-H",
                    f"Authorization: Bearer {DEMO_API_KEY}",
                    "-w",
                    f"%{{{metric}}}",
                    self.base_url + path,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            values.append(float(done.stdout))
        return statistics.median(values)

    def loopback_speed(self) -> float | None:
        """Bytes per second, curl downloading the 200 MiB blob from this server."""
        return self.curl_metric(BLOB_PATH, "speed_download")


def _read_url(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline().decode().strip()
            if line.startswith("http://"):
                return line
        if proc.poll() is not None:
            break
    raise RuntimeError(f"demo server did not start within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def demo_server(spec: str, *, start_timeout: float = 120.0) -> Iterator[Server]:
    """Run ``bench/server.py SPEC`` until the block exits (it is always stopped)."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, str(BENCH / "server.py"), spec],
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,  # a Ctrl-C of the bench reaches it only through _stop
        )
        try:
            try:
                url = _read_url(proc, start_timeout)
            except RuntimeError as error:
                _stop(proc)
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip()[-800:]
                raise RuntimeError(f"{error}: {tail}") from None
            yield Server(url)
        finally:
            _stop(proc)
            with suppress(OSError):
                assert proc.stdout is not None
                proc.stdout.close()
