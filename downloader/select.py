"""Which listed documents a run wants: pure functions over the models, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from downloader.models import Document

MEGABYTE = 1024 * 1024


def normalize_type(value: str) -> str:
    """``" .PDF "`` -> ``"pdf"``: how types are compared everywhere."""
    return value.strip().lstrip(".").strip().lower()


def split_types(values: Iterable[str]) -> tuple[str, ...]:
    """Flatten repeated and comma-separated type options into normalised, unique types."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if kind := normalize_type(part):
                seen[kind] = None
    return tuple(seen)


class Selection(BaseModel):
    """The filters of a run; recorded in the manifest as they were applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    max_size_mb: Annotated[float, Field(gt=0.0)] | None = None

    @field_validator("types", "exclude_types", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return split_types(str(item) for item in value)
        return value

    def reason_to_skip(self, document: Document) -> str | None:
        """Why ``document`` is not wanted, or None when it is."""
        kind = normalize_type(document.document_type)
        if not document.url:
            return "no url"
        if document.confidence_score < self.min_confidence:
            return f"confidence {document.confidence_score:.2f} < {self.min_confidence:.2f}"
        if self.types and kind not in self.types:
            return f"type {kind or '(none)'} not selected"
        if kind in self.exclude_types:
            return f"type {kind} excluded"
        size = document.file_size_mb
        if self.max_size_mb is not None and size is not None and size > self.max_size_mb:
            return f"claimed {size:g} MB > {self.max_size_mb:g} MB"
        return None

    @property
    def max_bytes(self) -> int | None:
        """The size limit in bytes, enforced on what is actually received."""
        return None if self.max_size_mb is None else int(self.max_size_mb * MEGABYTE)


@dataclass
class Wanted:
    """One URL to fetch, with every listing (source page, job) that pointed at it."""

    url: str
    document: Document
    source_pages: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    def add_listing(self, *, source_page: str, job_id: str) -> None:
        """Remember another page or job that links to this URL."""
        if source_page and source_page not in self.source_pages:
            self.source_pages.append(source_page)
        if job_id not in self.job_ids:
            self.job_ids.append(job_id)


def select(listings: Iterable[tuple[str, Document]], *, selection: Selection) -> dict[str, Wanted]:
    """Wanted documents by URL, from ``(job_id, document)`` pairs, in listing order.

    A URL listed several times (from several pages or jobs) is wanted once and keeps
    every source page and job; its first wanted listing supplies name and type.
    """
    wanted: dict[str, Wanted] = {}
    for job_id, document in listings:
        if selection.reason_to_skip(document) is not None:
            continue
        entry = wanted.setdefault(document.url, Wanted(url=document.url, document=document))
        entry.add_listing(source_page=document.source_page, job_id=job_id)
    return wanted
