"""What a run reports: progress callbacks while it works, a summary when it ends."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from downloader.errors import EXIT_OK
from downloader.manifest import Counts, Entry


class Progress(Protocol):
    """What the pipeline tells its caller while it works (the CLI draws bars from it)."""

    def planned(self, *, files: int, claimed_bytes: int) -> None:
        """Downloads are about to start."""

    def received(self, nbytes: int) -> None:
        """More bytes of some document arrived."""

    def finished(self, *, url: str, entry: Entry, outcome: str) -> None:
        """One document is done: ``outcome`` is new, changed, unchanged or failed."""

    def job(self, outcome: JobOutcome) -> None:
        """A job's results were fetched, or it failed or is not ready."""

    def waiting(self, *, job_id: str, status: str) -> None:
        """``--wait``: a job is still running."""


class SilentProgress:
    """A Progress that ignores everything."""

    def planned(self, *, files: int, claimed_bytes: int) -> None:
        """Ignore."""

    def received(self, nbytes: int) -> None:
        """Ignore."""

    def finished(self, *, url: str, entry: Entry, outcome: str) -> None:
        """Ignore."""

    def job(self, outcome: JobOutcome) -> None:
        """Ignore."""

    def waiting(self, *, job_id: str, status: str) -> None:
        """Ignore."""


class JobOutcome(BaseModel):
    """How one job went: its Skop status, what it listed, and any error."""

    job_id: str
    status: str
    website: str | None = None
    listed: int = 0
    selected: int = 0
    counts: Counts = Field(default_factory=Counts)
    error: str | None = None
    exit_code: int = EXIT_OK


class PlannedDocument(BaseModel):
    """A document a run wants, and where it goes (what ``--dry-run`` lists)."""

    url: str
    name: str
    document_type: str
    confidence_score: float
    file_size_mb: float | None
    path: str
    present: bool = False


class Failure(BaseModel):
    """A document that could not be fetched."""

    url: str
    path: str
    error: str


class RunSummary(BaseModel):
    """What a run did; ``exit_code`` is the worst outcome of all jobs and documents."""

    out: str
    manifest: str | None = None
    dry_run: bool = False
    jobs: list[JobOutcome]
    selected: int
    counts: Counts = Field(default_factory=Counts)
    downloaded: int = 0
    already_present: int = 0
    failed: int = 0
    not_attempted: int = 0
    mismatched: int = 0
    retries: int = 0
    bytes: int = 0
    seconds: float = 0.0
    download_seconds: float = 0.0
    interrupted: bool = False
    halted: str | None = None
    planned: list[PlannedDocument] = []
    failures: list[Failure] = []
    exit_code: int = EXIT_OK
