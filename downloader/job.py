"""The pipeline: job ids in, a verified folder and its manifest out.

``pull`` orchestrates: it takes the folder's lock, asks Skop for each job's
results (waiting for running jobs with ``wait``), and hands the listings to
:class:`~downloader.downloads.Downloads`. It reports progress through a callback
and never prints. Setting the ``stop`` event (the CLI does on SIGINT/SIGTERM)
stops new downloads, keeps the ``.part`` files of those in flight, saves the
manifest and returns the summary, marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence

from downloader.api import SkopClient, check_api_key, check_job_id
from downloader.config import Settings
from downloader.downloads import Downloads
from downloader.errors import ApiError, AuthError, JobNotReady, UsageError
from downloader.lock import folder_lock
from downloader.manifest import JobRecord, Manifest, load_manifest, utcnow
from downloader.models import Document, JobResults
from downloader.session import client_timeout, open_session, retry_policy, run_unless_stopped
from downloader.summary import JobOutcome, Progress, RunSummary, SilentProgress

__all__ = ["Progress", "RunSummary", "pull", "pull_sync"]

JITTER = 0.2  # polls wait the interval give or take 20%


async def pull(
    *,
    jobs: Sequence[str],
    settings: Settings,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> RunSummary:
    """Fetch, select and download the documents of ``jobs`` into ``settings.out``."""
    started, started_at = time.monotonic(), utcnow()
    job_ids = _check_jobs(jobs)
    api_key = check_api_key(settings.api_key.get_secret_value() if settings.api_key else None)
    progress, stop = progress or SilentProgress(), stop or asyncio.Event()
    async with _writer_lock(settings, dry_run=dry_run), open_session(settings) as session:
        manifest = load_manifest(settings.out)
        client = SkopClient(
            session=session,
            api_url=settings.api_url,
            api_key=api_key,
            policy=retry_policy(settings),
            timeout=client_timeout(settings),
        )
        collecting = _collect(client, job_ids, settings=settings, progress=progress)
        outcomes, listings = _remember_jobs(await run_unless_stopped(collecting, stop), manifest)
        downloads = Downloads(
            settings=settings, manifest=manifest, session=session, progress=progress, stop=stop
        )
        summary = await downloads.execute(
            listings, outcomes=outcomes, dry_run=dry_run, started_at=started_at
        )
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def pull_sync(*, jobs: Sequence[str], settings: Settings, dry_run: bool = False) -> RunSummary:
    """``pull`` for code that is not async (scripts, schedulers' tasks)."""
    return asyncio.run(pull(jobs=jobs, settings=settings, dry_run=dry_run))


def _check_jobs(jobs: Sequence[str]) -> list[str]:
    """The distinct job ids, each checked before any request."""
    if not jobs:
        msg = "no job id: give job ids as arguments, with --jobs-file, or as jobs in the config"
        raise UsageError(msg)
    return [check_job_id(job_id) for job_id in dict.fromkeys(jobs)]


@contextlib.asynccontextmanager
async def _writer_lock(settings: Settings, *, dry_run: bool) -> AsyncIterator[None]:
    """The output folder's lock, except for a dry run, which writes nothing."""
    if dry_run:
        yield
        return
    wait = settings.wait_timeout if settings.wait_lock else None
    async with folder_lock(settings.out, wait=wait):
        yield


Collected = tuple[JobOutcome, JobResults | None]


async def _collect(
    client: SkopClient, job_ids: list[str], *, settings: Settings, progress: Progress
) -> list[Collected]:
    """Every job's results, fetched (and waited for) concurrently."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(_collect_one(client, job, settings=settings, progress=progress))
                for job in job_ids
            ]
    except* AuthError as errors:  # the same key fails for every job: stop at once
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]


async def _collect_one(
    client: SkopClient, job_id: str, *, settings: Settings, progress: Progress
) -> Collected:
    """One job's results; an API error or unfinished job is recorded, not raised."""
    try:
        if settings.wait:
            await wait_for_job(client, job_id, settings=settings, progress=progress)
        results = await client.results(job_id)
        if results.status != "completed":
            raise not_ready(job_id=job_id, status=results.status, message=results.message)
    except (ApiError, JobNotReady) as exc:
        if isinstance(exc, AuthError):
            raise
        status = exc.status if isinstance(exc, JobNotReady) else "error"
        outcome = JobOutcome(job_id=job_id, status=status, error=str(exc), exit_code=exc.exit_code)
        progress.job(outcome)
        return outcome, None
    outcome = JobOutcome(
        job_id=job_id,
        status=results.status,
        website=results.metadata.original_website,
        listed=len(results.documents),
    )
    progress.job(outcome)
    return outcome, results


def _remember_jobs(
    collected: list[Collected], manifest: Manifest
) -> tuple[list[JobOutcome], list[tuple[str, Document]]]:
    """Record completed jobs in the manifest; their listings, in job order."""
    listings: list[tuple[str, Document]] = []
    for outcome, results in collected:
        if results is not None:
            manifest.jobs[outcome.job_id] = JobRecord.from_results(results, job_id=outcome.job_id)
            listings.extend((outcome.job_id, document) for document in results.documents)
    return [outcome for outcome, _ in collected], listings


async def wait_for_job(
    client: SkopClient, job_id: str, *, settings: Settings, progress: Progress
) -> None:
    """Poll ``/scrape/status`` until the job ends, politely, up to ``wait_timeout``."""
    deadline = time.monotonic() + settings.wait_timeout
    while True:
        status = await client.status(job_id)
        if status.finished:
            return
        progress.waiting(job_id=job_id, status=status.status)
        delay = settings.wait_interval * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311
        if time.monotonic() + delay > deadline:
            msg = (
                f"job {job_id} is still {status.status} after --wait-timeout "
                f"{settings.wait_timeout:g} s: run again later, or wait longer"
            )
            raise JobNotReady(msg, job_id=job_id, status=status.status)
        await asyncio.sleep(delay)


def not_ready(*, job_id: str, status: str, message: str) -> JobNotReady:
    """The error for a job that has no final results, saying what to do."""
    said = f" ({message})" if message else ""
    if status in {"failed", "cancelled"}:
        advice = "start a new Skop job for this site"
    else:
        advice = "try again when it has completed, or use --wait"
    msg = f"job {job_id} is {status}, not completed{said}: {advice}"
    return JobNotReady(msg, job_id=job_id, status=status)
