"""Run a command and write its rusage; used by measure.py when GNU time is missing.

Usage: ``python -S bench/launch.py RESULT_FILE COMMAND...``. Writes
``<maxrss KiB> <user s> <system s> <wall s>`` to RESULT_FILE and exits with the command's
status. Why a launcher at all: on Linux a child's ``ru_maxrss`` starts at the peak RSS
of the process that spawned it (the memory map it replaced at exec), so spawning the
tools straight from the bench (hundreds of MiB) would report that for every tool. This
launcher is a small interpreter (about 9 MiB, which becomes the floor of what it can
report); GNU time (about 1 MiB) is preferred when installed.
"""

import os
import subprocess
import sys
import time


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    with open(result, "w") as out:  # noqa: PTH123 (pathlib costs start-up time here)
        out.write(f"{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime} {wall}\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
