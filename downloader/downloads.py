"""One run's downloads: plan paths, fetch what is missing, record every outcome.

Each wanted document ends the run in one of these states, counted per job and in
total: ``new`` (written, not on disk before), ``unchanged`` (already on disk, or
revalidated by ``--refresh``), ``changed`` (``--refresh`` got a new body), or
``failed``. Documents an earlier job of the same website listed that this run's
jobs no longer list are ``gone``: recorded, never deleted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import posixpath
import shutil
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp

from downloader.config import Settings
from downloader.errors import (
    EXIT_DOCUMENTS_FAILED,
    EXIT_INTERRUPTED,
    DiskError,
    DocumentError,
    Interrupted,
    NoSpace,
    OutputError,
)
from downloader.fetch import (
    META_SUFFIX,
    PART_SUFFIX,
    Fetched,
    Fetcher,
    HostSlots,
    Validators,
    host_key,
)
from downloader.lock import LOCK_NAME
from downloader.manifest import (
    JOURNAL_NAME,
    MANIFEST_NAME,
    Entry,
    Journal,
    Manifest,
    RunRecord,
    save_manifest,
    utcnow,
)
from downloader.models import Document
from downloader.names import assign_names, safe_filename
from downloader.select import MEGABYTE, Wanted, normalize_type, select
from downloader.session import address_policy, client_timeout, retry_policy, run_unless_stopped
from downloader.summary import Failure, JobOutcome, PlannedDocument, Progress, RunSummary

OWN_FILES: Final = frozenset({MANIFEST_NAME, JOURNAL_NAME, LOCK_NAME})
HASH_CHUNK: Final = 1024 * 1024


class Downloads:
    """The downloads of one run and the manifest updates they cause."""

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
        self.outcomes: dict[str, str] = {}
        self.damaged: set[str] = set()  # on disk, but --verify found other bytes
        self.metas: set[Path] = set()  # validator files of resumable parts
        self.fetcher = Fetcher(
            session=session,
            policy=retry_policy(settings),
            timeout=client_timeout(settings),
            slots=HostSlots(total=settings.concurrency, per_host=settings.per_host),
            addresses=address_policy(settings),
            max_bytes=settings.selection.max_bytes,
            keep_mismatched=settings.keep_mismatched,
            metas=self.metas,
            on_bytes=progress.received,
        )

    async def execute(
        self,
        listings: list[tuple[str, Document]],
        *,
        outcomes: list[JobOutcome],
        dry_run: bool,
        started_at: datetime,
    ) -> RunSummary:
        """Plan, then (unless ``dry_run``) download and record; returns the summary."""
        wanted = select(listings, selection=self.settings.selection)
        for outcome in outcomes:
            outcome.selected = sum(outcome.job_id in item.job_ids for item in wanted.values())
        paths = self._assign_paths(wanted)
        plan = [self._planned(item, paths[url]) for url, item in wanted.items()]
        summary = RunSummary(out=str(self.out), dry_run=dry_run, jobs=outcomes, selected=len(plan))
        if dry_run:
            summary.planned = plan
            summary.exit_code = max(o.exit_code for o in outcomes)
        else:
            listed = {document.url for _, document in listings}
            await self._download_all(wanted, paths, summary, listed=listed, started_at=started_at)
        return summary

    # -- paths -----------------------------------------------------------------

    def _assign_paths(self, wanted: dict[str, Wanted]) -> dict[str, str]:
        """A distinct, stable path for each URL, folder by folder; earlier names are kept."""
        by_folder: defaultdict[str, dict[str, str]] = defaultdict(dict)
        for url, item in wanted.items():
            document = item.document
            name = safe_filename(name=document.name, url=url, document_type=document.document_type)
            by_folder[self._folder(item)][url] = name
        paths: dict[str, str] = {}
        for folder, desired in by_folder.items():
            keep, reserved = self._names_taken(folder)
            for url, name in assign_names(wanted=desired, keep=keep, reserved=reserved).items():
                if url in desired:
                    paths[url] = posixpath.join(folder, name)
        return paths

    def _folder(self, item: Wanted) -> str:
        """The subfolder ``--layout`` puts a document in ('' for flat)."""
        if self.settings.layout == "job":
            return item.job_ids[0]
        if self.settings.layout == "type":
            kind = normalize_type(item.document.document_type)
            return safe_filename(name=kind, url="", document_type=None) if kind else "other"
        return ""

    def _names_taken(self, folder: str) -> tuple[dict[str, str], set[str]]:
        """Names the manifest gave URLs in ``folder``, and every name already used there."""
        keep = {
            url: posixpath.basename(path)
            for url, path in self.manifest.paths_by_url().items()
            if posixpath.dirname(path) == folder
        }
        names, metas = _scan(self.out / folder)
        self.metas.update(metas)
        return keep, names | set(keep.values())

    def _planned(self, item: Wanted, path: str) -> PlannedDocument:
        document = item.document
        return PlannedDocument(
            url=item.url,
            name=document.name,
            document_type=document.document_type,
            confidence_score=document.confidence_score,
            file_size_mb=document.file_size_mb,
            path=path,
            present=self._present(item.url, path) is not None,
        )

    def _present(self, url: str, path: str) -> Entry | None:
        """The manifest entry of ``url`` if its file is on disk at ``path`` as recorded."""
        entry = self.manifest.documents.get(url)
        if entry is None or entry.path != path or not entry.is_on_disk(self.out):
            return None
        return entry

    # -- downloading -------------------------------------------------------------

    async def _download_all(
        self,
        wanted: dict[str, Wanted],
        paths: dict[str, str],
        summary: RunSummary,
        *,
        listed: set[str],
        started_at: datetime,
    ) -> None:
        _prepare(self.out)
        self.manifest.selection = self.settings.selection
        todo = [item for item in wanted.values() if not await self._keep(item, paths[item.url])]
        summary.already_present = len(wanted) - len(todo)
        claimed = sum(int((item.document.file_size_mb or 0) * MEGABYTE) for item in todo)
        self._check_space(claimed)
        self.progress.planned(files=len(todo), claimed_bytes=claimed)
        started = time.monotonic()
        try:
            with contextlib.suppress(Interrupted):
                await run_unless_stopped(
                    self._download_each(todo, paths, summary), self.stop, self.halt
                )
        finally:
            summary.download_seconds = round(time.monotonic() - started, 3)
            self._conclude(summary, todo=todo)
            self._count(wanted, listed, summary)
            self._record_run(summary, started_at=started_at)
            self.journal.close()
            summary.manifest = str(save_manifest(self.out, self.manifest))
            self.journal.discard()

    async def _keep(self, item: Wanted, path: str) -> bool:
        """True if the document is on disk as recorded and needs no request this run."""
        entry = self._present(item.url, path)
        if entry is None or self.settings.refresh:
            return False
        if self.settings.verify and not await _hash_matches(self.out / path, entry.sha256):
            self.damaged.add(item.url)
            return False
        self._record(item.url, entry, outcome="unchanged", listing=item)
        return True

    async def _download_each(
        self, todo: list[Wanted], paths: dict[str, str], summary: RunSummary
    ) -> None:
        """``--concurrency`` workers take documents in turn, hosts interleaved.

        A fixed pool keeps memory flat however many documents a job lists (a task
        per document costs kilobytes each); interleaving hosts keeps one busy host
        from holding every worker while others wait.
        """
        queue = collections.deque(_interleave_hosts(todo))

        async def worker() -> None:
            while queue:
                item = queue.popleft()
                await self._download_one(item, paths[item.url], summary)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.settings.concurrency, len(queue))):
                group.create_task(worker())

    async def _download_one(self, item: Wanted, path: str, summary: RunSummary) -> None:
        """Fetch one document and record the outcome; a failure never propagates."""
        attempted_at = utcnow()
        known = None if item.url in self.damaged else self._present(item.url, path)
        try:
            fetched = await self.fetcher.fetch(
                url=item.url,
                dest=self.out / path,
                claimed_type=normalize_type(item.document.document_type),
                known=_validators(item.url, known),
            )
        except DocumentError as exc:
            self._failed(item, path, exc, summary, attempted_at=attempted_at, known=known)
            return
        if fetched is None and known is not None:  # 304: what we have is current
            self._record(item.url, known, outcome="unchanged", listing=item)
            return
        assert fetched is not None
        entry = self._entry(item, path, attempted_at=attempted_at, fetched=fetched)
        summary.downloaded += 1
        summary.mismatched += fetched.type_mismatch
        self._record(item.url, entry, outcome=_outcome(known, fetched), listing=item)

    def _failed(
        self,
        item: Wanted,
        path: str,
        exc: DocumentError,
        summary: RunSummary,
        *,
        attempted_at: datetime,
        known: Entry | None,
    ) -> None:
        """Record a failure; a file we already had (``--refresh``) stays recorded as it was."""
        entry = known or self._entry(item, path, attempted_at=attempted_at, error=str(exc))
        summary.failed += 1
        summary.failures.append(Failure(url=item.url, path=path, error=str(exc)))
        if isinstance(exc, DiskError) and exc.out_of_space:
            summary.halted = str(exc)
            self.halt.set()
        self._record(item.url, entry, outcome="failed", listing=item)

    def _record(self, url: str, entry: Entry, *, outcome: str, listing: Wanted) -> None:
        """Keep ``entry`` (with every listing so far) in the manifest and the journal."""
        entry = entry.model_copy(
            update={
                "source_pages": _union(entry.source_pages, listing.source_pages),
                "job_ids": _union(entry.job_ids, listing.job_ids),
                "gone_at": None,
            }
        )
        self.manifest.documents[url] = entry
        self.outcomes[url] = outcome
        if outcome != "unchanged" or self.settings.refresh:
            self.journal.append(url, entry)
            self.progress.finished(url=url, entry=entry, outcome=outcome)

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
            source_pages=earlier.source_pages if earlier else [],
            job_ids=earlier.job_ids if earlier else [],
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

    # -- accounting --------------------------------------------------------------

    def _conclude(self, summary: RunSummary, *, todo: list[Wanted]) -> None:
        """Totals and exit code once downloads are over."""
        summary.not_attempted = sum(item.url not in self.outcomes for item in todo)
        summary.retries = self.fetcher.retries
        summary.bytes = self.fetcher.received
        summary.interrupted = self.stop.is_set()
        worst = max(outcome.exit_code for outcome in summary.jobs)
        if summary.failed or summary.halted:
            worst = max(worst, EXIT_DOCUMENTS_FAILED)
        summary.exit_code = EXIT_INTERRUPTED if summary.interrupted else worst

    def _count(self, wanted: dict[str, Wanted], listed: set[str], summary: RunSummary) -> None:
        """Per-job and total counts of new, unchanged, changed, failed and gone."""
        jobs = {outcome.job_id: outcome for outcome in summary.jobs}
        for url, outcome in self.outcomes.items():
            summary.counts.add(outcome)
            for job_id in wanted[url].job_ids:
                jobs[job_id].counts.add(outcome)
        for url, job_id in self._gone(listed, summary.jobs):
            entry = self.manifest.documents[url]
            if entry.gone_at is None:  # count what changed tonight, not every night
                summary.counts.add("gone")
                jobs[job_id].counts.add("gone")
                self.manifest.documents[url] = entry.model_copy(update={"gone_at": utcnow()})

    def _gone(self, listed: set[str], outcomes: list[JobOutcome]) -> list[tuple[str, str]]:
        """(url, job of this run) for documents its website listed before but not now."""
        this_run = {o.website: o.job_id for o in outcomes if o.website and o.status == "completed"}
        gone: list[tuple[str, str]] = []
        for url, entry in self.manifest.documents.items():
            if url in listed:
                continue
            for job_id in entry.job_ids:
                record = self.manifest.jobs.get(job_id)
                website = record.original_website if record else None
                if website in this_run and job_id != this_run[website]:
                    gone.append((url, this_run[website]))
                    break
        return gone

    def _record_run(self, summary: RunSummary, *, started_at: datetime) -> None:
        """Append this run to the manifest's history."""
        self.manifest.runs.append(
            RunRecord(
                started_at=started_at,
                finished_at=utcnow(),
                jobs=[outcome.job_id for outcome in summary.jobs],
                selection=self.settings.selection,
                counts=summary.counts,
                exit_code=summary.exit_code,
            )
        )


def _interleave_hosts(todo: list[Wanted]) -> list[Wanted]:
    """``todo`` reordered round-robin across hosts, each host's order kept."""
    by_host: defaultdict[str, list[Wanted]] = defaultdict(list)
    for item in todo:
        by_host[host_key(item.url)].append(item)
    rounds = itertools.zip_longest(*by_host.values())
    return [item for round_ in rounds for item in round_ if item is not None]


def _outcome(known: Entry | None, fetched: Fetched) -> str:
    """new, changed or unchanged, comparing with what the folder had."""
    if known is None:
        return "new"
    return "unchanged" if known.sha256 == fetched.sha256 else "changed"


def _validators(url: str, known: Entry | None) -> Validators | None:
    """Validators for a conditional request about a file we have, if any."""
    if known is None or not (known.etag or known.last_modified):
        return None
    return Validators(url=url, etag=known.etag, last_modified=known.last_modified)


async def _hash_matches(path: Path, sha256: str | None) -> bool:
    """True if the file's sha256 is ``sha256`` (hashed off the event loop)."""
    return await asyncio.to_thread(_sha256_of, path) == sha256


def _sha256_of(path: Path) -> str | None:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(HASH_CHUNK):
                hasher.update(chunk)
    except OSError:
        return None
    return hasher.hexdigest()


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


def _scan(folder: Path) -> tuple[set[str], set[Path]]:
    """Names of the documents already in ``folder``, and its parts' validator files."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return set(), set()
    metas = {entry for entry in entries if entry.name.endswith(META_SUFFIX)}
    names = {
        entry.name
        for entry in entries
        if entry.name not in OWN_FILES and not entry.name.endswith((PART_SUFFIX, META_SUFFIX))
    }
    return names, metas
