"""Run the bundled demo server for one bench scenario, in its own process.

Usage: ``python bench/server.py SPEC`` (SPEC as in ``scenarios.build_state``).

Prints the base URL (``http://127.0.0.1:PORT``) on stdout once it is listening, then
serves until SIGTERM/SIGINT or until its parent process goes away. Adds one route to
the demo app, ``GET /__hits``: ``{"documents": N}``, the number of requests the server
received on document paths (everything but the Skop API, ``/health``, ``/__hits`` and
the loopback-speed blob).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys

from aiohttp import web
from scenarios import BLOB_PATH, build_state

from downloader.demo import DemoState, make_app

_NOT_DOCUMENTS = ("/scrape/", "/health", "/__hits", BLOB_PATH)
_ETAG_CACHE = 1024  # demo.py caches this many digests; warming more would only evict


def document_hits(state: DemoState) -> int:
    """Requests received on document paths so far."""
    return sum(n for path, n in state.hits.items() if not path.startswith(_NOT_DOCUMENTS))


def warm(state: DemoState) -> None:
    """Compute the ETags (sha256) now, so the first timed tool does not pay for them."""
    documents = [doc for job in state.jobs.values() for doc in job.documents]
    if len(documents) <= _ETAG_CACHE:
        for doc in documents:
            _ = doc.etag


def build_app(state: DemoState) -> web.Application:
    """The demo app plus ``/__hits``."""

    async def hits(_request: web.Request) -> web.Response:
        return web.json_response({"documents": document_hits(state)})

    app = make_app(state)
    app.router.add_get("/__hits", hits)
    return app


async def serve_forever(spec: str) -> None:
    """Serve the scenario on 127.0.0.1, print the URL, wait for a signal or orphaning."""
    state = build_state(spec)
    # The request log grows by one record per request; a bench makes ~10^5 of them.
    state.log = collections.deque(maxlen=1000)  # type: ignore[assignment]
    warm(state)
    runner = web.AppRunner(
        build_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"http://{host}:{port}", flush=True)
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await runner.cleanup()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(serve_forever(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
