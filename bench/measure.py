"""Run one command and measure it: wall time, peak RSS and CPU time of its process tree.

Linux caveat: a child's ``ru_maxrss`` starts at the peak RSS of the process that spawned
it, and the bench process holds whole scenarios in memory. So each command is started
through a tiny launcher, which reports the ``wait4`` rusage of the command (and of the
children it reaped): GNU ``time`` when installed (floor about 1 MiB), else
``launch.py`` (a bare interpreter; floor about 9 MiB). The launcher runs in its own
session, and a timer kills that whole process group at the timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"
_LAUNCH = Path(__file__).resolve().with_name("launch.py")


@dataclass(frozen=True)
class Measurement:
    """One run of one command."""

    wall: float  # seconds from start to exit (launcher start-up excluded for launch.py)
    rss_mb: float  # peak RSS of the process tree, MiB
    cpu: float  # user + system seconds of the process tree
    returncode: int
    timed_out: bool
    stdout: str
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def rss_method() -> str:
    """How peak RSS is measured here, for the report."""
    if _has_gnu_time():
        return "GNU time (%M)"
    return "bench/launch.py, a bare-interpreter launcher: values below ~9 MiB read as ~9 MiB"


def _has_gnu_time() -> bool:
    return Path(GNU_TIME).exists() and shutil.which(GNU_TIME) is not None


def _launcher(result: Path) -> list[str]:
    if _has_gnu_time():
        return [GNU_TIME, "-q", "-f", "%M %U %S", "-o", str(result)]
    return [sys.executable, "-S", str(_LAUNCH), str(result)]


def _parse(result: Path) -> tuple[float, float, float | None]:
    """(max RSS KiB, CPU s, wall s or None) from the launcher's last line."""
    lines = result.read_text().split("\n") if result.exists() else []
    fields = next((line.split() for line in reversed(lines) if line.strip()), [])
    if len(fields) < 3:
        return float("nan"), float("nan"), None
    wall = float(fields[3]) if len(fields) > 3 else None
    return float(fields[0]), float(fields[1]) + float(fields[2]), wall


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for ``proc`` (a blocking wait: exact exit time); True if killed at ``timeout``."""
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        _kill_group(proc.pid)

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        proc.wait()
    except BaseException:  # Ctrl-C of the bench: the tool is in its own session
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        timer.cancel()
    return expired.is_set()


def run_measured(
    command: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Measurement:
    """Run ``command`` to completion (or ``timeout``) and measure it."""
    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        result = Path(tmp) / "rusage"
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [*_launcher(result), *command],
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
            timed_out = _wait(proc, timeout)
            wall = time.perf_counter() - start
        rss_kib, cpu, launcher_wall = _parse(result)
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
    return Measurement(
        wall=launcher_wall if launcher_wall is not None else wall,
        rss_mb=rss_kib / 1024,
        cpu=cpu,
        returncode=proc.returncode,
        timed_out=timed_out,
        stdout=stdout,
        stderr_tail=stderr.strip()[-600:],
    )


def median(values: Sequence[float]) -> float:
    """Median, NaN when empty."""
    return statistics.median(values) if values else float("nan")
