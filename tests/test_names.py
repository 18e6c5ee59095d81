"""Tests for downloader.names: safe file names and distinct name assignment."""

import hashlib
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from downloader.names import MAX_NAME_BYTES, assign_names, safe_filename

WINDOWS_FORBIDDEN = set('<>:"|?*')


def _tag(url: str) -> str:
    """The 8-hex-character collision tag for ``url``."""
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def assert_safe(name: str) -> None:
    """Assert every invariant a produced file name must satisfy."""
    assert name
    assert name not in {".", ".."}
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert "/" not in name
    assert "\\" not in name
    assert not WINDOWS_FORBIDDEN & set(name)
    assert all(unicodedata.category(char) not in {"Cc", "Cf", "Cs"} for char in name)
    assert name[0] not in " ."
    assert name[-1] not in " ."
    assert unicodedata.normalize("NFC", name) == name
    assert PurePosixPath(name).name == name
    assert PureWindowsPath(name).name == name
    assert name.split(".", 1)[0].strip().upper() not in {"CON", "PRN", "AUX", "NUL"}
    assert safe_filename(name=name, url="", document_type=None) == name


# --- safe_filename: examples ---------------------------------------------------


def test_title_gets_type_extension() -> None:
    """A plain title gets the document type as extension."""
    name = safe_filename(
        name="Board Meeting Minutes - January 2024", url="https://x.org/a", document_type="pdf"
    )
    assert name == "Board Meeting Minutes - January 2024.pdf"


def test_existing_extension_not_doubled_and_lowercased() -> None:
    """An extension already on the name is not appended again and is lowercased."""
    assert safe_filename(name="report.PDF", url="", document_type="pdf") == "report.pdf"


def test_dotted_uppercase_type_normalised() -> None:
    """A type like ' .PDF ' is normalised to 'pdf'."""
    assert safe_filename(name="report", url="", document_type=" .PDF ") == "report.pdf"


def test_weird_type_ignored() -> None:
    """A type that is not 1-10 alphanumerics is ignored in favour of the URL's."""
    name = safe_filename(name="x", url="https://x.org/a/b.docx", document_type="pdf/../x")
    assert name == "x.docx"
    assert safe_filename(name="x", url="", document_type="pdf/../x") == "x"


def test_overlong_type_ignored() -> None:
    """A type longer than ten characters is ignored."""
    assert safe_filename(name="x", url="", document_type="abcdefghijk") == "x"


def test_url_extension_used_without_type() -> None:
    """Without a type the URL path's extension is used, lowercased."""
    name = safe_filename(name="Minutes", url="https://x.org/f/M.PDF?v=1#p2", document_type=None)
    assert name == "Minutes.pdf"


def test_path_traversal_neutralised() -> None:
    """'../../etc/passwd' keeps no separators and no leading dots."""
    name = safe_filename(name="../../etc/passwd", url="", document_type=None)
    assert name == "etc_passwd"
    assert_safe(name)


def test_backslash_and_windows_chars_replaced() -> None:
    """Backslashes and Windows-forbidden characters become underscores."""
    name = safe_filename(name='a\\b<c>d:e"f|g?h*i', url="", document_type=None)
    assert name == "a_b_c_d_e_f_g_h_i"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b", "a_b"),
        ("line1\nline2", "line1_line2"),
        ("evil\u202egpj.exe", "evil_gpj.exe"),
        ("mark\u200eed", "mark_ed"),
        ("lone\ud800surrogate", "lone_surrogate"),
        ("\x00\x01\x02", "document"),
    ],
)
def test_control_and_format_chars_replaced(raw: str, expected: str) -> None:
    """NUL, newlines, bidi marks and lone surrogates become underscores."""
    assert safe_filename(name=raw, url="", document_type=None) == expected


def test_whitespace_and_underscores_collapsed() -> None:
    """Whitespace runs become one space and underscore runs one underscore."""
    name = safe_filename(name="  a \t\u3000 b__c \u00a0 ", url="", document_type=None)
    assert name == "a _ b_c"


def test_nfc_normalised() -> None:
    """Decomposed input comes out NFC-composed."""
    assert safe_filename(name="Cafe\u0301", url="", document_type=None) == "Caf\u00e9"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("con.pdf", "_con.pdf"),
        ("NUL", "_NUL"),
        ("lpt1", "_lpt1"),
        ("Com9.tar.gz", "_Com9.tar.gz"),
        ("aux ", "_aux"),
        ("console", "console"),
        ("com10", "com10"),
    ],
)
def test_windows_device_names_prefixed(raw: str, expected: str) -> None:
    """Windows device names get a leading underscore; look-alikes do not."""
    assert safe_filename(name=raw, url="", document_type=None) == expected


def test_device_name_with_type() -> None:
    """A device name is prefixed even when the extension comes from the type."""
    assert safe_filename(name="PRN", url="", document_type="pdf") == "_PRN.pdf"


def test_empty_name_uses_url_segment() -> None:
    """An empty name falls back to the decoded last URL path segment."""
    url = "https://x.org/files/Annual%20Report%202023.pdf?download=1#top"
    assert safe_filename(name="  ", url=url, document_type="pdf") == "Annual Report 2023.pdf"


def test_encoded_slash_in_url_segment_replaced() -> None:
    """A percent-encoded slash in the URL segment is not a separator."""
    name = safe_filename(name="", url="https://x.org/a%2F..%2F..%2Fb", document_type=None)
    assert "/" not in name
    assert_safe(name)


def test_empty_name_and_url_without_path() -> None:
    """No name and no URL path give 'document.<ext>'."""
    assert safe_filename(name="", url="https://x.org", document_type="pdf") == "document.pdf"
    assert safe_filename(name="...", url="https://x.org/", document_type="PDF") == "document.pdf"
    assert safe_filename(name="", url="", document_type=None) == "document"


def test_invalid_url_tolerated() -> None:
    """A URL that urlsplit rejects is treated as having no path."""
    assert safe_filename(name="", url="http://[::1", document_type="pdf") == "document.pdf"


@pytest.mark.parametrize("char", ["é", "中", "😀"])
def test_long_multibyte_name_trimmed(char: str) -> None:
    """A 300-character multibyte name is trimmed to the budget with its extension intact."""
    name = safe_filename(name=char * 300, url="", document_type="pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert len(name.encode("utf-8")) > MAX_NAME_BYTES - len(char.encode("utf-8"))
    assert set(name.removesuffix(".pdf")) == {char}


def test_trim_leaves_no_trailing_space_or_dot() -> None:
    """Cutting the stem does not leave it ending in a space or dot."""
    name = safe_filename(name="a" * 194 + " . b" * 10, url="", document_type="pdf")
    assert name == "a" * 194 + ".pdf"


def test_trim_keeps_combining_marks_with_base() -> None:
    """The cut never separates a base character from its combining marks."""
    raw = "e" * 195 + "\u0301" * 10
    name = safe_filename(name=raw, url="", document_type="pdf")
    assert name == "e" * 194 + ".pdf"


# --- safe_filename: properties -------------------------------------------------

url_text = st.one_of(
    st.text(),
    st.builds(lambda segment: f"https://example.org/files/{segment}", st.text()),
    st.builds(lambda segment: f"https://example.org/{quote(segment)}?q=1", st.text()),
)
type_text = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["pdf", ".PDF", " docx ", "x/../y", ""])
)
name_text = st.one_of(st.text(), st.text(min_size=100, max_size=400))


@given(name=name_text, url=url_text, document_type=type_text)
def test_safe_filename_invariants(name: str, url: str, document_type: str | None) -> None:
    """Any input yields a non-empty, safe, single-component, fixed-point name."""
    result = safe_filename(name=name, url=url, document_type=document_type)
    assert_safe(result)
    assert safe_filename(name=name, url=url, document_type=document_type) == result


@given(name=name_text, url=url_text)
def test_safe_filename_stays_inside_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, url: str
) -> None:
    """Joining the result under a folder resolves to a direct child of that folder."""
    root = tmp_path_factory.getbasetemp().resolve()
    result = safe_filename(name=name, url=url, document_type=None)
    assert (root / result).resolve().parent == root
    assert Path(result).name == result


# --- assign_names: examples ----------------------------------------------------

URL_A = "https://x.org/a"
URL_B = "https://x.org/b"


def test_distinct_names_unchanged() -> None:
    """Names that do not collide are used as wanted."""
    wanted = {URL_A: "a.pdf", URL_B: "b.pdf"}
    assert assign_names(wanted=wanted) == wanted


def test_collision_gets_hashed_suffix() -> None:
    """The sorted-first URL keeps the name; the other gets a hash suffix."""
    result = assign_names(wanted={URL_B: "report.pdf", URL_A: "report.pdf"})
    assert result == {URL_A: "report.pdf", URL_B: f"report-{_tag(URL_B)}.pdf"}


def test_collision_independent_of_dict_order() -> None:
    """The assignment does not depend on the mapping's iteration order."""
    first = assign_names(wanted={URL_A: "report.pdf", URL_B: "report.pdf"})
    second = assign_names(wanted={URL_B: "report.pdf", URL_A: "report.pdf"})
    assert first == second
    assert list(first) == list(second)


def test_case_insensitive_collision() -> None:
    """'Report.pdf' and 'report.pdf' collide."""
    result = assign_names(wanted={URL_A: "Report.pdf", URL_B: "report.pdf"})
    assert result == {URL_A: "Report.pdf", URL_B: f"report-{_tag(URL_B)}.pdf"}


def test_hashed_name_taken_gets_counter() -> None:
    """When the hashed name is taken too, '-2' is appended before the extension."""
    hashed = f"report-{_tag(URL_B)}.pdf"
    result = assign_names(
        wanted={URL_A: "report.pdf", URL_B: "report.pdf", "https://x.org/0": hashed}
    )
    assert result[URL_B] == f"report-{_tag(URL_B)}-2.pdf"


def test_suffix_without_extension() -> None:
    """A name without a real extension gets the suffix at its end."""
    result = assign_names(wanted={URL_A: "Minutes Jan. 2024", URL_B: "Minutes Jan. 2024"})
    assert result[URL_B] == f"Minutes Jan. 2024-{_tag(URL_B)}"


def test_suffixed_device_name_drops_guard() -> None:
    """A hashed variant of '_con.pdf' needs no guard and is itself a safe name."""
    result = assign_names(wanted={URL_A: "_con.pdf", URL_B: "_con.pdf"})
    assert result == {URL_A: "_con.pdf", URL_B: f"con-{_tag(URL_B)}.pdf"}
    assert_safe(result[URL_B])


def test_suffixed_long_name_retrimmed() -> None:
    """A hashed variant of a full-length name is re-trimmed to the budget."""
    long_name = safe_filename(name="中" * 300, url="", document_type="pdf")
    result = assign_names(wanted={URL_A: long_name, URL_B: long_name})
    assert result[URL_B].endswith(f"-{_tag(URL_B)}.pdf")
    assert len(result[URL_B].encode("utf-8")) <= MAX_NAME_BYTES


def test_keep_honoured_over_sorted_order() -> None:
    """A kept name wins even against a URL that sorts first."""
    result = assign_names(
        wanted={URL_A: "report.pdf", URL_B: "report.pdf"}, keep={URL_B: "report.pdf"}
    )
    assert result == {URL_A: f"report-{_tag(URL_A)}.pdf", URL_B: "report.pdf"}


def test_keep_honoured_when_wanted_name_changed() -> None:
    """A still-wanted URL keeps its earlier name even if its title changed."""
    result = assign_names(wanted={URL_A: "new title.pdf"}, keep={URL_A: "old title.pdf"})
    assert result == {URL_A: "old title.pdf"}


def test_keep_ignored_when_no_longer_wanted() -> None:
    """Kept names of URLs no longer wanted are dropped and free the name."""
    result = assign_names(wanted={URL_B: "report.pdf"}, keep={URL_A: "report.pdf"})
    assert result == {URL_B: "report.pdf"}


def test_colliding_kept_names_first_url_wins() -> None:
    """Of two colliding kept names the sorted-first URL keeps its name."""
    result = assign_names(
        wanted={URL_A: "x.pdf", URL_B: "report.pdf"},
        keep={URL_A: "Report.pdf", URL_B: "report.pdf"},
    )
    assert result == {URL_A: "Report.pdf", URL_B: f"report-{_tag(URL_B)}.pdf"}


@pytest.mark.parametrize("bad", ["../evil.pdf", ".hidden", "", "con.pdf", "a\x00b"])
def test_unsafe_kept_name_treated_as_new(bad: str) -> None:
    """A kept name safe_filename could not produce is not trusted."""
    assert assign_names(wanted={URL_A: "report.pdf"}, keep={URL_A: bad}) == {URL_A: "report.pdf"}


def test_keep_stable_when_documents_added() -> None:
    """Adding an unrelated document does not rename kept URLs."""
    first = assign_names(wanted={URL_B: "report.pdf"})
    second = assign_names(wanted={URL_A: "report.pdf", URL_B: "report.pdf"}, keep=first)
    assert second[URL_B] == first[URL_B]
    assert second[URL_A] == f"report-{_tag(URL_A)}.pdf"


# --- assign_names: properties --------------------------------------------------

pool_names = st.sampled_from(["report.pdf", "Report.PDF", "REPORT.pdf", "a", "A", "con.pdf"])
wanted_names = st.one_of(pool_names, st.text(max_size=30), st.text(min_size=190, max_size=210))
wanted_maps = st.dictionaries(st.text(max_size=8), wanted_names, max_size=8)


def _distinct_casefold(names: list[str]) -> bool:
    """Whether ``names`` are pairwise distinct under casefold."""
    return len({name.casefold() for name in names}) == len(names)


@given(wanted=wanted_maps, keep=st.dictionaries(st.text(max_size=8), pool_names, max_size=4))
def test_assign_names_distinct_and_safe(wanted: dict[str, str], keep: dict[str, str]) -> None:
    """Every wanted URL gets a safe name, distinct from all others under casefold."""
    result = assign_names(wanted=wanted, keep=keep)
    assert set(result) == set(wanted)
    assert _distinct_casefold(list(result.values()))
    for name in result.values():
        assert_safe(name)
    assert assign_names(wanted=dict(reversed(wanted.items())), keep=keep) == result


@given(wanted=wanted_maps, extra=st.dictionaries(st.text(max_size=8), wanted_names, max_size=4))
def test_assign_names_stable(wanted: dict[str, str], extra: dict[str, str]) -> None:
    """Re-running with the previous result as keep and more documents renames nothing."""
    first = assign_names(wanted=wanted)
    second = assign_names(wanted={**extra, **wanted}, keep=first)
    assert {url: second[url] for url in first} == first


def test_reserved_names_are_never_given_to_new_urls() -> None:
    """A name held by another document or a foreign file is not reused."""
    names = assign_names(
        wanted={"https://a/x.pdf": "report.pdf", "https://b/y.pdf": "report.pdf"},
        keep={"https://b/y.pdf": "report.pdf"},
        reserved={"REPORT.pdf", "notes.txt"},
    )
    assert names["https://b/y.pdf"] == "report.pdf"
    assert names["https://a/x.pdf"].startswith("report-")
    only_new = assign_names(wanted={"https://c/z.txt": "notes.txt"}, reserved={"notes.txt"})
    assert only_new["https://c/z.txt"] != "notes.txt"
