"""Selection: pure filtering and de-duplication of listed documents."""

from __future__ import annotations

import pytest

from downloader.models import Document
from downloader.select import Selection, normalize_type, select, split_types


def doc(url: str, **fields: object) -> Document:
    """A listed document with sensible defaults."""
    values: dict[str, object] = {
        "name": url.rsplit("/", 1)[-1],
        "url": url,
        "source_page": "https://example.org/page",
        "document_type": "pdf",
        "confidence_score": 0.9,
        "file_size_mb": 1.0,
    }
    return Document.model_validate(values | fields)


@pytest.mark.parametrize(
    ("given", "expected"), [("pdf", "pdf"), (".PDF", "pdf"), ("  Docx ", "docx"), ("", "")]
)
def test_normalize_type(given: str, expected: str) -> None:
    """Types compare case-insensitively, without a leading dot or spaces."""
    assert normalize_type(given) == expected


def test_split_types_flattens_commas_and_repeats() -> None:
    """Repeated and comma-separated options become one ordered, unique tuple."""
    assert split_types(["pdf,.DOCX", "docx", " txt ,"]) == ("pdf", "docx", "txt")


def test_min_confidence_is_inclusive() -> None:
    """A score equal to the threshold is kept, a lower one skipped."""
    selection = Selection(min_confidence=0.8)
    kept = select(
        [("job_a", doc("u1", confidence_score=0.8)), ("job_a", doc("u2", confidence_score=0.79))],
        selection=selection,
    )
    assert list(kept) == ["u1"]


def test_type_filters() -> None:
    """--type keeps only listed types; --exclude-type removes types."""
    listings = [
        ("job_a", doc("a", document_type="PDF")),
        ("job_a", doc("b", document_type="docx")),
        ("job_a", doc("c", document_type="txt")),
    ]
    assert list(select(listings, selection=Selection(types=("pdf", "docx")))) == ["a", "b"]
    assert list(select(listings, selection=Selection(exclude_types=(".TXT",)))) == ["a", "b"]


def test_max_size_uses_claimed_size_and_keeps_unknown() -> None:
    """A document claiming more than the limit is skipped; one with no claim is kept."""
    listings = [
        ("job_a", doc("big", file_size_mb=12.0)),
        ("job_a", doc("small", file_size_mb=0.5)),
        ("job_a", doc("unknown", file_size_mb=None)),
    ]
    assert list(select(listings, selection=Selection(max_size_mb=10))) == ["small", "unknown"]


def test_duplicate_urls_merge_source_pages_and_jobs() -> None:
    """One URL listed from two pages and two jobs is wanted once, with every listing."""
    listings = [
        ("job_a", doc("u", source_page="p1")),
        ("job_a", doc("u", source_page="p2")),
        ("job_b", doc("u", source_page="p1")),
    ]
    wanted = select(listings, selection=Selection())
    assert list(wanted) == ["u"]
    assert wanted["u"].source_pages == ["p1", "p2"]
    assert wanted["u"].job_ids == ["job_a", "job_b"]


def test_documents_without_url_are_skipped() -> None:
    """A listing with no URL cannot be fetched and is not selected."""
    assert select([("job_a", doc(""))], selection=Selection()) == {}
    assert Selection().reason_to_skip(doc("")) == "no url"


def test_selection_validates_ranges() -> None:
    """Confidence outside 0..1 and non-positive sizes are rejected."""
    with pytest.raises(ValueError, match="less than or equal to 1"):
        Selection(min_confidence=1.5)
    with pytest.raises(ValueError, match="greater than 0"):
        Selection(max_size_mb=0)


def test_max_bytes() -> None:
    """The byte limit is the megabyte limit in MiB."""
    assert Selection(max_size_mb=2).max_bytes == 2 * 1024 * 1024
    assert Selection().max_bytes is None
