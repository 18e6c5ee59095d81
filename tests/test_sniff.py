"""Tests for downloader.sniff: content type detection from a file's first bytes."""

import hashlib
import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from downloader.sniff import (
    DETECTED_TYPES,
    SNIFF_BYTES,
    compatible,
    detect_type,
    is_html_instead,
)

OOXML_TYPES = '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="x"/>'
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
    "<h1>Members area</h1><p>Please log in to view this document.</p>"
    '<form method="post" action="/login"><input name="user"><input name="password" '
    'type="password"><button>Log in</button></form></body></html>'
)
FRENCH = "Réunion du conseil municipal — procès-verbal de l'année fiscale, été 2024.\n"


def _junk(size: int, seed: str = "junk") -> bytes:
    """Deterministic pseudo-random bytes."""
    return hashlib.shake_256(seed.encode()).digest(size)


def _zip(members: list[tuple[str, bytes]], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An in-memory ZIP archive with ``members`` in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, mode="w", compression=method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _ooxml(part: str) -> bytes:
    """A minimal OOXML package: ``[Content_Types].xml``, then ``part``."""
    return _zip([("[Content_Types].xml", OOXML_TYPES.encode()), (part, b"<doc/>" * 50)])


HEADS: list[tuple[str, bytes, str | None]] = [
    # PDF
    ("pdf header", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n", "pdf"),
    ("pdf after junk", _junk(600) + b"%PDF-1.4\n", "pdf"),
    ("pdf marker too late", b" " * 1100 + b"%PDF-1.4\n", "txt"),
    # ZIP family
    ("docx", _ooxml("word/document.xml"), "docx"),
    ("xlsx", _ooxml("xl/workbook.xml"), "xlsx"),
    ("pptx", _ooxml("ppt/presentation.xml"), "pptx"),
    ("docx stored", _zip([("word/document.xml", b"<w/>")], method=zipfile.ZIP_STORED), "docx"),
    (
        "ooxml with word/ beyond the head",
        _zip([("[Content_Types].xml", _junk(3000)), ("word/document.xml", b"<w/>")]),
        "zip",
    ),
    ("plain zip", _zip([("readme.txt", b"hello"), ("data/word/x.txt", b"x")]), "zip"),
    (
        "odt",
        _zip(
            [("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")],
            method=zipfile.ZIP_STORED,
        ),
        "zip",
    ),
    ("truncated zip header", b"PK\x03\x04\x14\x00", "zip"),
    # Fixed magic numbers
    ("ole", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _junk(500), "ole"),
    ("rtf", b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}} Hello\\par }", "rtf"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _junk(64), "png"),
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + _junk(64), "jpg"),
    ("gif87a", b"GIF87a\x01\x00\x01\x00" + _junk(16), "gif"),
    ("gif89a", b"GIF89a\x01\x00\x01\x00" + _junk(16), "gif"),
    ("webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + _junk(32), "webp"),
    ("riff but not webp", b"RIFF\x24\x00\x00\x00WAVEfmt " + _junk(32), None),
    ("tiff little-endian", b"II*\x00\x08\x00\x00\x00" + _junk(32), "tiff"),
    ("tiff big-endian", b"MM\x00*\x00\x00\x00\x08" + _junk(32), "tiff"),
    # HTML
    ("html login page", LOGIN_PAGE.encode(), "html"),
    ("uppercase HTML", b"<HTML><HEAD><TITLE>Error</TITLE></HEAD></HTML>", "html"),
    ("bom and whitespace", b"\xef\xbb\xbf \r\n\t <!doctype html>\n<html lang=en>", "html"),
    ("legacy doctype", b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">\n<HTML>', "html"),
    ("comment then html", b"<!-- saved from url=(0014)about:internet -->\n<html>", "html"),
    ("comments then body", b"<!-- a -->\n<!-- b -->\n  <BODY>oops</BODY>", "html"),
    ("starts with script", b"<script>location.href='/login'</script>", "html"),
    ("starts with meta", b'<meta http-equiv="refresh" content="0; url=/login">', "html"),
    ("starts with title", b"<title>403 Forbidden</title>", "html"),
    ("starts with head", b"<head><title>x</title></head>", "html"),
    (
        "xhtml",
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0'
        b' Strict//EN" "x.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml">',
        "html",
    ),
    ("xhtml without doctype", b'<?xml version="1.0"?>\n<html xmlns="x"><body/></html>', "html"),
    ("utf-16 html", "<!DOCTYPE html><html><body>é</body></html>".encode("utf-16"), "html"),
    ("cp1252 html", "<html><body>Réunion</body></html>".encode("cp1252"), "html"),
    ("header tag is not head", b"<header>Site</header>", "txt"),
    # XML
    ("xml", b'<?xml version="1.0" encoding="UTF-8"?>\n<feed><entry/></feed>', "xml"),
    ("xml with bom", b'\xef\xbb\xbf\n  <?xml version="1.0"?><root/>', "xml"),
    ("xml stylesheet", b'<?xml version="1.0"?>\n<?xml-stylesheet href="s.xsl"?>\n<rss/>', "xml"),
    ("utf-16 xml", '<?xml version="1.0" encoding="UTF-16"?><a/>'.encode("utf-16"), "xml"),
    # Text
    ("utf-8 accents", FRENCH.encode(), "txt"),
    ("utf-8 bom text", b"\xef\xbb\xbf" + FRENCH.encode(), "txt"),
    ("cut mid-character", FRENCH.encode()[: FRENCH.encode().index(b"\xc3") + 1], "txt"),
    ("cut in a 4-byte character", "Budget 📈 2024".encode()[:10], "txt"),
    ("utf-16 le text", b"\xff\xfe" + FRENCH.encode("utf-16-le"), "txt"),
    ("utf-16 be text", b"\xfe\xff" + FRENCH.encode("utf-16-be"), "txt"),
    ("utf-16 cut mid-unit", (b"\xff\xfe" + FRENCH.encode("utf-16-le"))[:-1], "txt"),
    ("csv", b"id,name,amount\n1,R\xc3\xa9sum\xc3\xa9,12.50\n2,Budget,7\n", "txt"),
    ("tabs and form feeds", b"col\tcol\r\n\fpage two\n", "txt"),
    ("a stray escape", b"\x1b[1mbold\x1b[0m and some more ordinary words", "txt"),
    ("text mentioning html", b"To embed it, write <html> around the page.\n", "txt"),
    ("comment without html", b"<!-- just a comment -->\nplain words\n", "txt"),
    ("unterminated comment", b"<!-- this comment never ends <html>" + b"x" * 3000, "txt"),
    ("xml without declaration", b"<urlset><url><loc>https://x</loc></url></urlset>", "txt"),
    # Unknown
    ("empty", b"", None),
    ("binary junk", _junk(SNIFF_BYTES), None),
    ("nul bytes", b"abc\x00def", None),
    ("utf-16 without bom", "plain".encode("utf-16-le"), None),
    ("cp1252 accents", FRENCH.encode("cp1252", errors="replace"), None),
    ("many controls", b"a\x01b\x02c\x03d\x04e", None),
    ("only a cut-off character", b"\xe2\x82", None),
    ("invalid utf-8", b"hello \xff world", None),
]


@pytest.mark.parametrize(("head", "expected"), [h[1:] for h in HEADS], ids=[h[0] for h in HEADS])
def test_detect_type(head: bytes, expected: str | None) -> None:
    """Each sample head is detected as its real type."""
    assert detect_type(head[:SNIFF_BYTES]) == expected


def test_sniff_bytes_value() -> None:
    """Callers pass 2048 bytes."""
    assert SNIFF_BYTES == 2048


def test_bytes_beyond_sniff_window_are_ignored() -> None:
    """Only the first SNIFF_BYTES count: a NUL after them does not spoil text."""
    assert detect_type(b"a" * SNIFF_BYTES + b"\x00\x00") == "txt"


def test_window_cut_inside_a_character_is_text() -> None:
    """A multibyte character split by the SNIFF_BYTES cut still reads as text."""
    body = b"a" * (SNIFF_BYTES - 1) + "é".encode()
    assert detect_type(body) == "txt"
    assert detect_type(body[:SNIFF_BYTES]) == "txt"


@pytest.mark.parametrize(
    ("document_type", "expected"),
    [("pdf", "pdf"), ("docx", "docx"), ("txt", "txt"), ("csv", "txt"), ("doc", "ole")],
)
@pytest.mark.parametrize("size", [0, 100, 5_000, 200_000])
def test_demo_samples_are_detected(document_type: str, expected: str, size: int) -> None:
    """The demo server's generated bodies are detected as their type."""
    samples = pytest.importorskip("downloader.samples")
    body = samples.make_body(document_type=document_type, size=size, seed="x", title="Réunion")
    assert detect_type(body[:SNIFF_BYTES]) == (expected if body else None)


COMPATIBLE: list[tuple[str, str | None, bool]] = [
    ("pdf", "pdf", True),
    ("pdf", "html", False),
    ("pdf", "txt", False),
    ("pdf", "zip", False),
    ("pdf", None, True),
    ("docx", "docx", True),
    ("docx", "zip", True),
    ("docx", "xlsx", False),
    ("docx", "ole", False),
    ("xlsx", "xlsx", True),
    ("xlsx", "zip", True),
    ("pptx", "pptx", True),
    ("pptx", "zip", True),
    ("pptx", "docx", False),
    ("doc", "ole", True),
    ("doc", "docx", False),
    ("xls", "ole", True),
    ("ppt", "ole", True),
    ("msg", "ole", True),
    ("doc", "html", False),
    ("odt", "zip", True),
    ("ods", "zip", True),
    ("odp", "zip", True),
    ("epub", "zip", True),
    ("odt", "docx", False),
    ("zip", "zip", True),
    ("zip", "docx", True),
    ("zip", "pdf", False),
    ("txt", "txt", True),
    ("txt", "html", False),
    ("txt", "pdf", False),
    ("csv", "txt", True),
    ("csv", "html", False),
    ("md", "txt", True),
    ("json", "txt", True),
    ("tsv", "txt", True),
    ("html", "html", True),
    ("htm", "html", True),
    ("html", "txt", True),
    ("html", "pdf", False),
    ("xml", "xml", True),
    ("xml", "txt", True),
    ("xml", "html", False),
    ("rtf", "rtf", True),
    ("rtf", "txt", False),
    ("jpg", "jpg", True),
    ("jpeg", "jpg", True),
    ("jpg", "png", False),
    ("png", "png", True),
    ("png", "html", False),
    ("gif", "gif", True),
    ("webp", "webp", True),
    ("tiff", "tiff", True),
    ("tif", "tiff", True),
    ("tif", "jpg", False),
    ("dwg", "html", True),
    ("", "pdf", True),
]


@pytest.mark.parametrize(("claimed", "detected", "expected"), COMPATIBLE)
def test_compatible(claimed: str, detected: str | None, expected: bool) -> None:
    """The compatibility table holds."""
    assert compatible(claimed=claimed, detected=detected) is expected


IS_HTML_INSTEAD: list[tuple[str, str | None, bool]] = [
    ("pdf", "html", True),
    ("doc", "html", True),
    ("docx", "html", True),
    ("xls", "html", True),
    ("xlsx", "html", True),
    ("ppt", "html", True),
    ("pptx", "html", True),
    ("rtf", "html", True),
    ("odt", "html", True),
    ("ods", "html", True),
    ("odp", "html", True),
    ("epub", "html", True),
    ("zip", "html", True),
    ("jpg", "html", True),
    ("png", "html", True),
    ("txt", "html", False),
    ("csv", "html", False),
    ("md", "html", False),
    ("json", "html", False),
    ("html", "html", False),
    ("htm", "html", False),
    ("xml", "html", False),
    ("dwg", "html", False),
    ("pdf", "pdf", False),
    ("pdf", "txt", False),
    ("pdf", "xml", False),
    ("pdf", None, False),
]


@pytest.mark.parametrize(("claimed", "detected", "expected"), IS_HTML_INSTEAD)
def test_is_html_instead(claimed: str, detected: str | None, expected: bool) -> None:
    """The HTML-instead table holds."""
    assert is_html_instead(claimed=claimed, detected=detected) is expected


@pytest.mark.parametrize("claimed", sorted({row[0] for row in COMPATIBLE + IS_HTML_INSTEAD}))
def test_html_instead_is_never_compatible(claimed: str) -> None:
    """Whenever an HTML page counts as "instead", it is also incompatible."""
    if is_html_instead(claimed=claimed, detected="html"):
        assert not compatible(claimed=claimed, detected="html")


@given(st.sampled_from(sorted({row[0] for row in COMPATIBLE})))
def test_unknown_detection_is_compatible(claimed: str) -> None:
    """An unknown detection never contradicts the claim."""
    assert compatible(claimed=claimed, detected=None)


@given(st.binary(max_size=4096))
def test_detect_type_total(data: bytes) -> None:
    """Any bytes give a documented type or None, never an exception."""
    assert detect_type(data) in DETECTED_TYPES | {None}
    assert detect_type(data) == detect_type(data[:SNIFF_BYTES])


PLAIN = st.text(st.characters(categories=("Ll", "Lo", "Nd", "Zs")), max_size=800)


@given(PLAIN, st.data())
def test_any_prefix_of_plain_text_is_text(text: str, data: st.DataObject) -> None:
    """Every byte prefix of UTF-8 prose, even one cut mid-character, is text."""
    body = ("a" + text).encode()
    cut = data.draw(st.integers(min_value=1, max_value=len(body)))
    assert detect_type(body[:cut]) == "txt"
