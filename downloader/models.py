"""Skop's response bodies as pydantic models. No I/O here.

The published OpenAPI document marks no field as required, so every field has a
default; ranges (0..1) and the job id pattern are enforced, unknown fields are
kept, and unknown status values are tolerated (the reference's own example
answers ``"extracting"``, which its enum does not list).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

JOB_ID_PATTERN: Final = r"^job_[a-z0-9]+$"
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})

JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]


class SkopModel(BaseModel):
    """Base of every Skop body: immutable, and keeps fields it does not know."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Document(SkopModel):
    """One document a job found. Everything in it is a claim, not a fact."""

    name: str = ""
    url: str = ""
    source_page: str = ""
    document_type: str = ""
    confidence_score: Fraction = 0.0
    file_size_mb: Annotated[float, Field(ge=0.0)] | None = None
    extracted_at: str | None = None


class JobErrorEntry(SkopModel):
    """An error the crawl itself met (not a download error of ours)."""

    error_id: str | None = None
    agent_name: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    page_url: str | None = None
    timestamp: str | None = None
    is_recoverable: bool | None = None


class JobParameters(SkopModel):
    """The parameters the job was created with."""

    single_page: bool | None = None
    timeout: int | None = None
    confidence_threshold: Fraction | None = None
    file_type: str | None = None
    max_file_size_mb: float | None = None


class JobMetadata(SkopModel):
    """Job metadata; open-ended, the reference's example carries more keys."""

    job_id: JobId | None = None
    created_at: str | None = None
    completed_at: str | None = None
    original_website: str | None = None
    original_prompt: str | None = None
    parameters: JobParameters = JobParameters()


class JobResults(SkopModel):
    """The body of ``GET /scrape/results/{job_id}``."""

    job_id: JobId | None = None
    status: str = "completed"
    message: str = ""
    documents: list[Document] = []
    metadata: JobMetadata = JobMetadata()
    total_documents_found: Count | None = None
    total_documents_downloaded: Count | None = None
    total_pages_crawled: Count | None = None
    success_rate: Fraction | None = None
    cost: float | None = None
    total_runtime_seconds: float | None = None
    runtime_minutes: float | None = None
    has_errors: bool = False
    errors: list[JobErrorEntry] = []
    warnings: list[str] = []


class JobStatus(SkopModel):
    """The body of ``GET /scrape/status/{job_id}``."""

    job_id: JobId | None = None
    status: str = "pending"
    message: str = ""
    progress: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    estimated_completion: str | None = None
    current_agent: str | None = None
    agents_completed: list[str] = []
    total_pages_crawled: Count | None = None
    total_documents_found: Count | None = None
    is_active: bool | None = None
    has_errors: bool = False
    errors: list[JobErrorEntry] = []
    warnings: list[str] = []

    @property
    def finished(self) -> bool:
        """True once the job will not change any more."""
        if self.status in TERMINAL_STATUSES:
            return True
        return self.is_active is False


class ApiErrorBody(SkopModel):
    """Skop's JSON error body; ``error`` is ``true`` or a code like ``insufficient_credits``."""

    error: bool | str | None = None
    message: str | None = None
    status_code: int | None = None
    path: str | None = None
    timestamp: str | None = None
    details: dict[str, Any] | None = None
    suggested_action: str | None = None
