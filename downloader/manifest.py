"""``<out>/manifest.json``: what is in the folder, where it came from, and its hashes.

One manifest per output folder, keyed by document URL, written atomically
(a temporary file, then ``os.replace``), so a reader never sees half of one.

While a run downloads, each finished document is also appended to a journal
(``.fetch-docs.journal``, one JSON line each). The manifest is written at the end
of the run and the journal removed; a run that was killed before that leaves the
journal behind, and the next load folds it into the manifest, so no finished
document is fetched twice. Cost stays linear: one line per document.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from downloader import __version__
from downloader.errors import OutputError
from downloader.models import JobResults
from downloader.select import Selection

MANIFEST_NAME: Final = "manifest.json"
JOURNAL_NAME: Final = ".fetch-docs.journal"
SCHEMA_VERSION: Final = 1


def utcnow() -> datetime:
    """Now, in UTC, to the second (manifests are read by people)."""
    return datetime.now(UTC).replace(microsecond=0)


class ManifestModel(BaseModel):
    """Base of the manifest's models: strict about keys so typos are caught."""

    model_config = ConfigDict(extra="forbid")


class Entry(ManifestModel):
    """One document URL and what became of it."""

    status: Literal["downloaded", "failed"]
    path: str | None = Field(description="file path relative to the output folder, '/'-separated")
    size: int | None = None
    sha256: str | None = None
    error: str | None = None
    name: str = ""
    document_type: str = ""
    file_size_mb: float | None = None
    confidence_score: float | None = None
    source_pages: list[str] = []
    job_ids: list[str] = []
    http_status: int | None = None
    content_type: str | None = None
    detected_type: str | None = None
    type_mismatch: bool = False
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    downloaded_at: datetime | None = None
    attempted_at: datetime | None = None
    gone_at: datetime | None = Field(
        default=None, description="when a newer job of the same website stopped listing it"
    )

    def is_on_disk(self, out: Path) -> bool:
        """True when it was downloaded and its file is still there with the recorded size."""
        if self.status != "downloaded" or self.path is None or self.size is None:
            return False
        try:
            return (out / self.path).stat().st_size == self.size
        except OSError:
            return False


class Counts(ManifestModel):
    """What became of documents: per job, per run, and in the manifest's history."""

    new: int = 0
    unchanged: int = 0
    changed: int = 0
    failed: int = 0
    gone: int = 0

    def add(self, outcome: str) -> None:
        """Count one document ``outcome`` (a field name)."""
        setattr(self, outcome, getattr(self, outcome) + 1)


class RunRecord(ManifestModel):
    """One run that wrote this folder, for the history."""

    started_at: datetime
    finished_at: datetime
    jobs: list[str]
    selection: Selection
    counts: Counts
    exit_code: int


class JobRecord(ManifestModel):
    """A job's own summary, as Skop reported it when it was pulled."""

    job_id: str
    status: str
    message: str = ""
    original_website: str | None = None
    total_documents_found: int | None = None
    total_documents_downloaded: int | None = None
    total_pages_crawled: int | None = None
    success_rate: float | None = None
    cost: float | None = None
    total_runtime_seconds: float | None = None
    has_errors: bool = False
    error_count: int = 0
    warnings: list[str] = []
    pulled_at: datetime

    @classmethod
    def from_results(cls, results: JobResults, *, job_id: str) -> JobRecord:
        """The record of ``results``, pulled now."""
        return cls(
            job_id=job_id,
            status=results.status,
            message=results.message,
            original_website=results.metadata.original_website,
            total_documents_found=results.total_documents_found,
            total_documents_downloaded=results.total_documents_downloaded,
            total_pages_crawled=results.total_pages_crawled,
            success_rate=results.success_rate,
            cost=results.cost,
            total_runtime_seconds=results.total_runtime_seconds,
            has_errors=results.has_errors,
            error_count=len(results.errors),
            warnings=list(results.warnings),
            pulled_at=utcnow(),
        )


class Manifest(ManifestModel):
    """The whole ``manifest.json``."""

    schema_version: int = SCHEMA_VERSION
    generator: str = f"fetch-docs {__version__}"
    updated_at: datetime | None = None
    selection: Selection | None = None
    jobs: dict[str, JobRecord] = {}
    documents: dict[str, Entry] = {}
    runs: list[RunRecord] = []

    def paths_by_url(self) -> dict[str, str]:
        """The file path each URL already uses, so names stay stable across runs."""
        return {url: entry.path for url, entry in self.documents.items() if entry.path}


class JournalLine(ManifestModel):
    """One finished document, as appended to the journal."""

    url: str
    entry: Entry


class Journal:
    """The append-only record of documents finished since the manifest was written."""

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL_NAME
        self._file: TextIO | None = None

    def append(self, url: str, entry: Entry) -> None:
        """Record ``entry`` durably enough to survive the process being killed."""
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(JournalLine(url=url, entry=entry).model_dump_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        """Stop appending."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Remove the journal once the manifest holds everything in it."""
        self.close()
        self.path.unlink(missing_ok=True)


def fold_journal(manifest: Manifest, out: Path) -> Manifest:
    """``manifest`` with the entries of a journal left by an unfinished run."""
    try:
        lines = (out / JOURNAL_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return manifest
    for line in lines:
        try:
            record = JournalLine.model_validate_json(line)
        except ValidationError:
            continue  # the torn last line of a killed process
        manifest.documents[record.url] = record.entry
    return manifest


def load_manifest(out: Path) -> Manifest:
    """The folder's manifest with any unfinished run's journal folded in."""
    return fold_journal(_read_manifest(out), out)


def _read_manifest(out: Path) -> Manifest:
    """The folder's manifest file, or an empty manifest if there is none yet."""
    path = out / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Manifest()
    except OSError as exc:
        msg = f"cannot read '{path}': {exc.strerror or exc}"
        raise OutputError(msg) from exc
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        msg = f"'{path}' is not a fetch-docs manifest ({exc.error_count()} problems): move it aside"
        raise OutputError(msg) from exc


def save_manifest(out: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically and return its path."""
    path = out / MANIFEST_NAME
    temporary = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    data = manifest.model_copy(update={"updated_at": utcnow()}).model_dump_json(indent=2)
    try:
        temporary.write_text(data + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        msg = f"cannot write '{path}': {exc.strerror or exc}"
        raise OutputError(msg) from exc
    return path
