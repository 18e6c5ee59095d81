"""The "naive peer": the aiohttp downloader anyone would write in ten minutes.

Usage: ``python bench/naive.py LIST -j N -d DIR``, where LIST has one ``URL<TAB>NAME``
per line. One ClientSession, an asyncio.Semaphore(N), the whole body read into memory
with ``await resp.read()``, then written to DIR/NAME. No retries, no resume, no hashing.
Exits 1 if any download failed (each failure is printed on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp


def _save(path: Path, body: bytes) -> None:
    path.write_bytes(body)  # blocking, as the naive version would do


async def _fetch(
    session: aiohttp.ClientSession, gate: asyncio.Semaphore, url: str, path: Path
) -> bool:
    async with gate:
        try:
            async with session.get(url) as resp:
                resp.raise_for_status()
                body = await resp.read()
        except aiohttp.ClientError as error:
            print(f"failed: {url}: {error}", file=sys.stderr)
            return False
        _save(path, body)
        return True


async def download(pairs: list[tuple[str, str]], *, concurrency: int, out: Path) -> int:
    """Fetch every (url, name) into ``out``; the number of failures."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(
            *(_fetch(session, gate, url, out / name) for url, name in pairs)
        )
    return results.count(False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("list", type=Path, help="file of URL<TAB>NAME lines")
    parser.add_argument("-j", type=int, default=8, help="downloads at once")
    parser.add_argument("-d", type=Path, default=Path(), help="output folder")
    args = parser.parse_args()
    lines = args.list.read_text().splitlines()
    pairs = [(url, name) for url, name in (line.split("\t", 1) for line in lines if line)]
    args.d.mkdir(parents=True, exist_ok=True)
    failures = asyncio.run(download(pairs, concurrency=args.j, out=args.d))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
