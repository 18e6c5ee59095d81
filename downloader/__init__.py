"""fetch-docs: pull the documents a Skop scraping job found into a verified folder.

Library use::

    from downloader import Settings, pull_sync

    summary = pull_sync(jobs=["job_4fc79a89797e"], settings=Settings(api_key="sk-..."))

``pull`` is the async form. Names are imported lazily, so ``fetch-docs --help``
does not pay for aiohttp and pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RunSummary", "Settings", "__version__", "pull", "pull_sync"]

if TYPE_CHECKING:
    from downloader.config import Settings
    from downloader.job import pull, pull_sync
    from downloader.summary import RunSummary

_LAZY = {
    "Settings": "downloader.config",
    "pull": "downloader.job",
    "pull_sync": "downloader.job",
    "RunSummary": "downloader.summary",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'downloader' has no attribute {name!r}"
    raise AttributeError(msg)
