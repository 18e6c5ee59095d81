"""One writer per output folder: an advisory lock on ``<out>/.fetch-docs.lock``.

The lock is an ``flock`` held for the whole run; the kernel drops it when the
process ends, however it ends, so a lock left by a dead process (crash,
``kill -9``, reboot) is taken over at once. The file holds the holder's pid and
start time, only to say who holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, TextIO

from downloader.errors import FolderLocked, OutputError

LOCK_NAME: Final = ".fetch-docs.lock"
POLL_SECONDS: Final = 0.5


@contextlib.asynccontextmanager
async def folder_lock(out: Path, *, wait: float | None = None) -> AsyncIterator[None]:
    """Hold the folder's lock; wait up to ``wait`` seconds for it (None: do not wait)."""
    handle = _open_lock_file(out)
    try:
        await _acquire(handle, out=out, wait=wait)
        _describe_holder(handle)
        yield
    finally:
        handle.close()  # closing releases the flock


def _open_lock_file(out: Path) -> TextIO:
    try:
        out.mkdir(parents=True, exist_ok=True)
        return (out / LOCK_NAME).open("a+", encoding="utf-8")
    except OSError as exc:
        msg = f"cannot use output folder '{out}': {exc.strerror or exc}"
        raise OutputError(msg) from exc


async def _acquire(handle: TextIO, *, out: Path, wait: float | None) -> None:
    deadline = time.monotonic() + (wait or 0.0)
    while not _try_lock(handle):
        if wait is None or time.monotonic() >= deadline:
            raise FolderLocked(_refusal(handle, out=out, waited=wait))
        await asyncio.sleep(POLL_SECONDS)


def _try_lock(handle: TextIO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _describe_holder(handle: TextIO) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}))
    handle.flush()


def _refusal(handle: TextIO, *, out: Path, waited: float | None) -> str:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        holder = {}
    who = f"pid {holder.get('pid', '?')}, since {holder.get('since', '?')}"
    if waited is None:
        return f"another fetch-docs ({who}) is writing '{out}': wait for it, or pass --wait-lock"
    return f"another fetch-docs ({who}) still holds '{out}' after --wait-lock {waited:g} s"
