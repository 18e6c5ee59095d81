"""The pipeline: job ids in, a verified folder and its manifest out.

``pull`` orchestrates: it asks Skop for each job's results, selects documents,
names them, hands them to the fetcher, and records every outcome in the journal
and the manifest. It reports progress through a callback and never prints.
Setting the ``stop`` event (the CLI does on SIGINT/SIGTERM) stops new downloads,
keeps the ``.part`` files of those in flight, saves the manifest and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from downloader import __version__
from downloader.api import SkopClient, check_api_key, check_job_id
from downloader.config import Settings
from downloader.errors import (
    EXIT_API,
    EXIT_DOCUMENTS_FAILED,
    EXIT_INTERRUPTED,
    ApiError,
    AuthError,
    DiskError,
    DocumentError,
    Interrupted,
    JobNotReady,
    NoSpace,
    OutputError,
)
from downloader.fetch import META_SUFFIX, PART_SUFFIX, Fetched, Fetcher, HostSlots
from downloader.manifest import (
    JOURNAL_NAME,
    MANIFEST_NAME,
    Entry,
    JobRecord,
    Journal,
    Manifest,
    load_manifest,
    save_manifest,
    utcnow,
)
from downloader.models import Document
from downloader.names import assign_names, safe_filename
from downloader.netsafety import AddressPolicy, GuardedResolver
from downloader.retry import RetryPolicy
from downloader.select import MEGABYTE, Wanted, select
from downloader.summary import (
    Failure,
    JobOutcome,
    PlannedDocument,
    Progress,
    RunSummary,
    SilentProgress,
)

__all__ = ["Progress", "RunSummary", "pull", "pull_sync"]

OWN_FILES = frozenset({MANIFEST_NAME, JOURNAL_NAME})
T = TypeVar("T")


async def pull(
    *,
    jobs: Sequence[str],
    settings: Settings,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> RunSummary:
    """Fetch, select and download the documents of ``jobs`` into ``settings.out``."""
    started = time.monotonic()
    for job_id in jobs:
        check_job_id(job_id)
    api_key = check_api_key(settings.api_key.get_secret_value() if settings.api_key else None)
    manifest = load_manifest(settings.out)
    async with open_session(settings) as session:
        client = SkopClient(
            session=session,
            api_url=settings.api_url,
            api_key=api_key,
            policy=retry_policy(settings),
            timeout=client_timeout(settings),
        )
        stop = stop or asyncio.Event()
        outcomes, listings = await run_unless_stopped(
            _collect(client, jobs=jobs, manifest=manifest), stop
        )
        run = _Run(
            settings=settings,
            manifest=manifest,
            session=session,
            progress=progress or SilentProgress(),
            stop=stop,
        )
        summary = await run.execute(listings, outcomes=outcomes, dry_run=dry_run)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


async def run_unless_stopped(work: Coroutine[Any, Any, T], *events: asyncio.Event) -> T:
    """Await ``work``; if one of ``events`` is set first, cancel it and raise Interrupted."""
    task = asyncio.ensure_future(work)
    watchers = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (*watchers, task):
            pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if task.cancelled():
        msg = "interrupted; finished documents and the manifest are kept"
        raise Interrupted(msg)
    return task.result()


def pull_sync(*, jobs: Sequence[str], settings: Settings, dry_run: bool = False) -> RunSummary:
    """``pull`` for code that is not async (scripts, schedulers' tasks)."""
    return asyncio.run(pull(jobs=jobs, settings=settings, dry_run=dry_run))


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy the settings ask for."""
    return RetryPolicy(
        retries=settings.retries,
        base=settings.retry_base,
        cap=settings.retry_cap,
        max_wait=settings.max_retry_wait,
    )


def client_timeout(settings: Settings) -> aiohttp.ClientTimeout:
    """Connect and per-read idle timeouts; no total, so big files on slow links finish."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
    )


def address_policy(settings: Settings) -> AddressPolicy:
    """Which addresses documents may come from; the Skop API host is trusted."""
    api_host = (URL(settings.api_url).host or "").lower()
    return AddressPolicy(public_only=settings.public_only, exempt_hosts=frozenset({api_host}))


@contextlib.asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """The run's one HTTP session. No default auth: the key is added per API request."""
    connector = aiohttp.TCPConnector(
        limit=settings.concurrency + 2,
        limit_per_host=0,
        resolver=GuardedResolver(policy=address_policy(settings)),
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=client_timeout(settings),
        headers={"User-Agent": f"fetch-docs/{__version__}"},
        trust_env=False,
    ) as session:
        yield session


async def _collect(
    client: SkopClient, *, jobs: Sequence[str], manifest: Manifest
) -> tuple[list[JobOutcome], list[tuple[str, Document]]]:
    """Each job's results; a job that fails is recorded and the others go on."""
    outcomes: list[JobOutcome] = []
    listings: list[tuple[str, Document]] = []
    for job_id in dict.fromkeys(jobs):
        try:
            results = await client.results(job_id)
        except AuthError:
            raise  # the same key would fail for every job
        except ApiError as exc:
            failed = JobOutcome(job_id=job_id, status="error", error=str(exc), exit_code=EXIT_API)
            outcomes.append(failed)
            continue
        outcome = JobOutcome(job_id=job_id, status=results.status, listed=len(results.documents))
        if results.status == "completed":
            manifest.jobs[job_id] = JobRecord.from_results(results, job_id=job_id)
            listings.extend((job_id, document) for document in results.documents)
        else:
            error = not_ready(job_id=job_id, status=results.status, message=results.message)
            outcome.error, outcome.exit_code = str(error), error.exit_code
        outcomes.append(outcome)
    return outcomes, listings


def not_ready(*, job_id: str, status: str, message: str) -> JobNotReady:
    """The error for a job that has no final results, saying what to do."""
    said = f" ({message})" if message else ""
    if status in {"failed", "cancelled"}:
        advice = "start a new Skop job for this site"
    else:
        advice = "try again when it has completed"
    msg = f"job {job_id} is {status}, not completed{said}: {advice}"
    return JobNotReady(msg, job_id=job_id, status=status)


class _Run:
    """One run's downloads and the manifest updates they cause."""

    def __init__(
        self,
        *,
        settings: Settings,
        manifest: Manifest,
        session: aiohttp.ClientSession,
        progress: Progress,
        stop: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.out = settings.out
        self.manifest = manifest
        self.progress = progress
        self.stop = stop
        self.halt = asyncio.Event()
        self.journal = Journal(self.out)
        self.fetcher = Fetcher(
            session=session,
            policy=retry_policy(settings),
            timeout=client_timeout(settings),
            slots=HostSlots(total=settings.concurrency, per_host=settings.per_host),
            addresses=address_policy(settings),
            max_bytes=settings.selection.max_bytes,
            keep_mismatched=settings.keep_mismatched,
            on_bytes=progress.received,
        )

    async def execute(
        self, listings: list[tuple[str, Document]], *, outcomes: list[JobOutcome], dry_run: bool
    ) -> RunSummary:
        wanted = select(listings, selection=self.settings.selection)
        for outcome in outcomes:
            outcome.selected = sum(outcome.job_id in item.job_ids for item in wanted.values())
        paths = self._assign_paths(wanted)
        plan = [self._planned(item, paths[url]) for url, item in wanted.items()]
        summary = RunSummary(out=str(self.out), dry_run=dry_run, jobs=outcomes, selected=len(plan))
        if dry_run:
            summary.planned = plan
        else:
            await self._download_all(wanted, paths, summary)
        summary.exit_code = max([summary.exit_code, *(o.exit_code for o in outcomes)])
        return summary

    def _assign_paths(self, wanted: dict[str, Wanted]) -> dict[str, str]:
        """A distinct, stable file name for each URL; earlier runs' names are kept."""
        desired = {
            url: safe_filename(
                name=item.document.name, url=url, document_type=item.document.document_type
            )
            for url, item in wanted.items()
        }
        keep = self.manifest.paths_by_url()
        reserved = _names_in(self.out) | set(keep.values())
        assigned = assign_names(wanted=desired, keep=keep, reserved=reserved)
        return {url: assigned[url] for url in wanted}

    def _planned(self, item: Wanted, path: str) -> PlannedDocument:
        document = item.document
        entry = self.manifest.documents.get(item.url)
        return PlannedDocument(
            url=item.url,
            name=document.name,
            document_type=document.document_type,
            confidence_score=document.confidence_score,
            file_size_mb=document.file_size_mb,
            path=path,
            present=entry is not None and entry.path == path and entry.is_on_disk(self.out),
        )

    async def _download_all(
        self, wanted: dict[str, Wanted], paths: dict[str, str], summary: RunSummary
    ) -> None:
        _prepare(self.out)
        self.manifest.selection = self.settings.selection
        todo = [item for item in wanted.values() if not self._keep_present(item, paths[item.url])]
        summary.already_present = len(wanted) - len(todo)
        claimed = sum(int((item.document.file_size_mb or 0) * MEGABYTE) for item in todo)
        self._check_space(claimed)
        self.progress.planned(files=len(todo), claimed_bytes=claimed)
        started = time.monotonic()
        try:
            await self._download_until_stopped(todo, paths, summary)
        finally:
            summary.download_seconds = round(time.monotonic() - started, 3)
            self.journal.close()
            summary.manifest = str(save_manifest(self.out, self.manifest))
            self.journal.discard()
        self._conclude(summary, todo=len(todo))

    async def _download_until_stopped(
        self, todo: list[Wanted], paths: dict[str, str], summary: RunSummary
    ) -> None:
        """Run every download, unless ``stop`` or a full disk ends them early."""
        with contextlib.suppress(Interrupted):
            await run_unless_stopped(
                self._download_each(todo, paths, summary), self.stop, self.halt
            )
        summary.interrupted = self.stop.is_set()

    async def _download_each(
        self, todo: list[Wanted], paths: dict[str, str], summary: RunSummary
    ) -> None:
        async with asyncio.TaskGroup() as group:
            for item in todo:
                group.create_task(self._download_one(item, paths[item.url], summary))

    def _conclude(self, summary: RunSummary, *, todo: int) -> None:
        """Counts and exit code once downloads are over."""
        summary.not_attempted = todo - summary.downloaded - summary.failed
        summary.retries = self.fetcher.retries
        summary.bytes = self.fetcher.received
        if summary.failed or summary.halted:
            summary.exit_code = EXIT_DOCUMENTS_FAILED
        if summary.interrupted:
            summary.exit_code = EXIT_INTERRUPTED

    def _check_space(self, claimed: int) -> None:
        """Refuse to start when the claimed sizes cannot fit in the free space."""
        if self.settings.no_space_check:
            return
        free = shutil.disk_usage(self.out).free
        if claimed > free:
            msg = (
                f"the selected documents claim {claimed / MEGABYTE:.1f} MB but '{self.out}' has "
                f"{free / MEGABYTE:.1f} MB free: free some space, narrow the selection "
                "(--max-size-mb, --type), or pass --no-space-check"
            )
            raise NoSpace(msg)

    def _keep_present(self, item: Wanted, path: str) -> bool:
        """Record new listings of a document already on disk; True if it needs no download."""
        entry = self.manifest.documents.get(item.url)
        if entry is None or entry.path != path or not entry.is_on_disk(self.out):
            return False
        self.manifest.documents[item.url] = entry.model_copy(
            update={
                "source_pages": _union(entry.source_pages, item.source_pages),
                "job_ids": _union(entry.job_ids, item.job_ids),
            }
        )
        return True

    async def _download_one(self, item: Wanted, path: str, summary: RunSummary) -> None:
        """Fetch one document and record the outcome; a failure never propagates."""
        attempted_at = utcnow()
        claimed = item.document.document_type.strip().lstrip(".").lower()
        try:
            fetched = await self.fetcher.fetch(
                url=item.url, dest=self.out / path, claimed_type=claimed
            )
        except DocumentError as exc:
            entry = self._entry(item, path, attempted_at=attempted_at, error=str(exc))
            summary.failed += 1
            summary.failures.append(Failure(url=item.url, path=path, error=str(exc)))
            if isinstance(exc, DiskError) and exc.out_of_space:
                summary.halted = str(exc)
                self.halt.set()
        else:
            entry = self._entry(item, path, attempted_at=attempted_at, fetched=fetched)
            summary.downloaded += 1
            summary.mismatched += fetched.type_mismatch
        self.manifest.documents[item.url] = entry
        self.journal.append(item.url, entry)
        self.progress.finished(url=item.url, entry=entry)

    def _entry(
        self,
        item: Wanted,
        path: str,
        *,
        attempted_at: datetime,
        fetched: Fetched | None = None,
        error: str | None = None,
    ) -> Entry:
        """The manifest entry for one outcome, keeping the listings of earlier runs."""
        document = item.document
        earlier = self.manifest.documents.get(item.url)
        failed = Entry(
            status="failed",
            path=path,
            error=error,
            name=document.name,
            document_type=document.document_type,
            file_size_mb=document.file_size_mb,
            confidence_score=document.confidence_score,
            source_pages=_union(earlier.source_pages if earlier else [], item.source_pages),
            job_ids=_union(earlier.job_ids if earlier else [], item.job_ids),
            attempted_at=attempted_at,
        )
        if fetched is None:
            return failed
        return failed.model_copy(
            update={
                "status": "downloaded",
                "size": fetched.size,
                "sha256": fetched.sha256,
                "http_status": fetched.http_status,
                "content_type": fetched.content_type,
                "detected_type": fetched.detected_type,
                "type_mismatch": fetched.type_mismatch,
                "final_url": fetched.final_url,
                "etag": fetched.etag,
                "last_modified": fetched.last_modified,
                "downloaded_at": utcnow(),
            }
        )


def _union(first: list[str], second: list[str]) -> list[str]:
    """Both lists' items, in order, once each."""
    return list(dict.fromkeys([*first, *second]))


def _prepare(out: Path) -> None:
    """Create the output folder, or say clearly why it cannot be used."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot use output folder '{out}': {exc.strerror or exc}"
        raise OutputError(msg) from exc


def _names_in(out: Path) -> set[str]:
    """Names of the files already in the output folder (none if it does not exist)."""
    try:
        return {
            entry.name
            for entry in out.iterdir()
            if entry.name not in OWN_FILES and not entry.name.endswith((PART_SUFFIX, META_SUFFIX))
        }
    except OSError:
        return set()
