"""Skop's bodies validate exactly as the reference gives them, and tolerate what it gets wrong."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from downloader.models import JobResults, JobStatus

REFERENCE_EXAMPLE = {
    "job_id": "job_4fc79a89797e",
    "status": "completed",
    "message": "Job completed successfully. Found 2 document(s).",
    "documents": [
        {
            "name": "Board Meeting Minutes - January 2024",
            "url": "https://example.com/docs/minutes-jan-2024.pdf",
            "source_page": "https://example.com/board",
            "document_type": "pdf",
            "confidence_score": 0.95,
            "file_size_mb": 2.4,
            "extracted_at": "2024-01-15T10:30:00Z",
            "thumbnail": "kept as an extra field",
        }
    ],
    "metadata": {
        "job_id": "job_4fc79a89797e",
        "original_website": "https://example.com",
        "parameters": {"single_page": False, "timeout": 1800, "confidence_threshold": 0.1},
        "current_agent": "extractor",
        "final_status": "completed",
    },
    "total_documents_found": 2,
    "success_rate": 0.5,
    "cost": 0.12,
    "has_errors": True,
    "errors": [{"error_id": "e1", "page_url": None, "is_recoverable": True}],
    "warnings": ["Some documents were too large to download"],
}


def test_reference_example_validates_from_bytes() -> None:
    """The reference's example parses from raw bytes, extra fields kept."""
    results = JobResults.model_validate_json(json.dumps(REFERENCE_EXAMPLE).encode())
    assert results.documents[0].confidence_score == 0.95
    assert results.documents[0].model_extra == {"thumbnail": "kept as an extra field"}
    assert results.metadata.model_extra is not None
    assert results.metadata.model_extra["current_agent"] == "extractor"
    assert results.errors[0].page_url is None


def test_every_field_may_be_missing() -> None:
    """The spec requires no field: an empty object is a valid (empty) result."""
    results = JobResults.model_validate_json(b"{}")
    assert results.documents == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("documents", 0, "confidence_score"), 1.5, "documents.0.confidence_score"),
        (("success_rate",), -0.1, "success_rate"),
        (("job_id",), "JOB-1", "job_id"),
        (("metadata", "job_id"), "job_UPPER", "metadata.job_id"),
    ],
)
def test_ranges_and_pattern_are_enforced(
    path: tuple[object, ...], value: object, field: str
) -> None:
    """Out-of-range scores and malformed job ids are errors naming the field."""
    body = json.loads(json.dumps(REFERENCE_EXAMPLE))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError) as info:
        JobResults.model_validate_json(json.dumps(body))
    assert ".".join(str(p) for p in info.value.errors()[0]["loc"]) == field


def test_unknown_status_is_tolerated() -> None:
    """A status outside the enum (the reference's own 'extracting') is kept as is."""
    status = JobStatus.model_validate_json(
        b'{"status": "extracting", "is_active": true, "progress": null}'
    )
    assert status.status == "extracting"
    assert not status.finished


@pytest.mark.parametrize(
    ("body", "finished"),
    [
        ({"status": "completed"}, True),
        ({"status": "cancelled", "is_active": True}, True),
        ({"status": "extracting", "is_active": False}, True),
        ({"status": "in_progress"}, False),
    ],
)
def test_status_finished(body: dict[str, object], finished: bool) -> None:
    """A job is finished at a terminal status, or when it says it is no longer active."""
    assert JobStatus.model_validate(body).finished is finished
