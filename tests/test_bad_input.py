"""Bad input never becomes a traceback: any body, URL or name gives a result or a clear error."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from downloader.api import parse_body
from downloader.errors import BadResponse, UnsafeUrl
from downloader.fetch import check_url
from downloader.models import JobResults, JobStatus
from downloader.names import safe_filename
from downloader.select import Selection, select

API_URL = "https://api.skop.dev/scrape/results/job_x"

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
document_like = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "url": st.text() | json_values,
        "document_type": json_values,
        "confidence_score": json_values,
        "file_size_mb": json_values,
        "source_page": json_values,
    },
)
results_like = st.fixed_dictionaries(
    {}, optional={"documents": st.lists(document_like, max_size=4), "status": json_values}
)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_clearly(body: bytes) -> None:
    """Arbitrary bytes give results or a BadResponse, never another exception."""
    try:
        parse_body(body, model=JobResults, url=API_URL)
    except BadResponse as exc:
        assert str(exc).startswith(f"Skop sent an unusable answer for url '{API_URL}': ")


@given(json_values | results_like)
def test_any_json_parses_or_names_the_field(value: Any) -> None:
    """Any JSON document is valid results or a one-line error naming what broke."""
    body = json.dumps(value).encode()
    for model in (JobResults, JobStatus):
        try:
            parsed = parse_body(body, model=model, url=API_URL)
        except BadResponse as exc:
            assert "\n" not in str(exc)
            continue
        if isinstance(parsed, JobResults):
            for document in select(
                [("job_x", d) for d in parsed.documents], selection=Selection()
            ).values():
                safe_filename(
                    name=document.document.name,
                    url=document.url,
                    document_type=document.document.document_type,
                )


@given(st.text())
def test_any_url_string_is_checked_or_refused(url: str) -> None:
    """Any string as a document URL is accepted as http(s) with a host, or refused clearly."""
    try:
        host = check_url(url)
    except UnsafeUrl as exc:
        assert url in str(exc) or "invalid url" in str(exc)
    else:
        assert host
        assert URL(url).scheme in {"http", "https"}


@given(name=st.text(), url=st.text(), kind=st.text())
def test_any_listing_gets_a_safe_name(name: str, url: str, kind: str) -> None:
    """Any name, URL and type give one safe path component."""
    result = safe_filename(name=name, url=url, document_type=kind)
    assert PurePosixPath(result).name == result
    assert result not in {".", ".."}
