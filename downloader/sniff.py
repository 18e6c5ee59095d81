"""Content sniffing: the real type of a download from its first bytes.

Servers lie: a URL the crawler reported as a ``pdf`` may answer ``200 OK`` with an
HTML login or error page. This module is pure (no I/O): ``detect_type`` looks at the
first ``SNIFF_BYTES`` bytes of a body, ``compatible`` says whether that detection is
an acceptable file of the claimed type, and ``is_html_instead`` singles out the
common "HTML page instead of the document" case.

Decisions:

* Detection runs in a fixed order: PDF (``%PDF-`` anywhere in the first 1024 bytes,
  since PDF allows leading junk), ZIP/OOXML, fixed magic numbers (OLE2, RTF, images),
  HTML, XML, then text. The first match wins.
* A ZIP is ``docx``/``xlsx``/``pptx`` only when a local file header in the head names
  a ``word/``, ``xl/`` or ``ppt/`` member; otherwise it is ``"zip"`` (this includes
  OOXML whose first members are ``[Content_Types].xml`` and ``_rels/``, and
  OpenDocument/EPUB). Matching member names, not raw substrings, avoids false hits
  such as a ``word/`` inside some other archive's path or content.
* HTML is recognised only by how the document *starts* (after a BOM, whitespace,
  comments and ``<?...?>`` processing instructions such as an XML declaration): a
  doctype or an ``<html>``, ``<head>``, ``<body>``, ``<script>``, ``<title>`` or
  ``<meta>`` tag. A text file that merely mentions ``<html>`` later is ``"txt"``.
  The markup checks read UTF-16 (with a BOM) too, and work on any 8-bit charset.
* Text is UTF-8 (a multibyte character cut off at the end of the head is fine, the
  head is a prefix) or UTF-16 with a BOM, without NUL and with at most one stray
  control character per 64 characters (at least 2 allowed); ``\\t\\n\\r\\f`` are not
  stray. Legacy 8-bit text (cp1252 with accents) is ``None``: unknown, never wrong.
* ``compatible`` follows the documented table, with two widenings: ``html``/``htm``
  also accept ``"txt"`` (HTML detection is deliberately strict, so a page that starts
  with ``<div>`` or plain text is ``"txt"``), and ``zip`` also accepts
  ``docx``/``xlsx``/``pptx`` (every OOXML file is a valid ZIP archive).
* ``is_html_instead`` is True only for claimed types that are never HTML (office,
  PDF, RTF, archives, images). For text-like claims (txt, csv, tsv, md, json) and
  markup claims (html, htm, xml) it is False to avoid false alarms; an HTML body for
  a txt or csv is still reported by ``compatible`` returning False.
"""

import codecs
import re
from collections.abc import Mapping
from typing import Final

__all__ = ["DETECTED_TYPES", "SNIFF_BYTES", "compatible", "detect_type", "is_html_instead"]

SNIFF_BYTES: Final[int] = 2048
"""How many leading bytes callers should pass; ``detect_type`` ignores anything beyond."""

DETECTED_TYPES: Final[frozenset[str]] = frozenset(
    {"pdf", "docx", "xlsx", "pptx", "zip", "ole", "rtf", "html", "xml", "png", "jpg", "gif"}
    | {"webp", "tiff", "txt"}
)
"""Every value ``detect_type`` can return besides ``None``."""

_PDF_WINDOW: Final = 1024
_PDF_MAGIC: Final = b"%PDF-"
_ZIP_MAGIC: Final = b"PK\x03\x04"
_ZIP_NAME_LENGTH: Final = slice(26, 28)  # offsets inside a local file header
_ZIP_NAME_START: Final = 30
_OOXML_MEMBERS: Final[tuple[tuple[bytes, str], ...]] = (
    (b"word/", "docx"),
    (b"xl/", "xlsx"),
    (b"ppt/", "pptx"),
)

# (type, ((offset, bytes), ...)): every part must match.
_SIGNATURES: Final[tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...]] = (
    ("ole", ((0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),)),
    ("rtf", ((0, b"{\\rtf"),)),
    ("png", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("jpg", ((0, b"\xff\xd8\xff"),)),
    ("gif", ((0, b"GIF87a"),)),
    ("gif", ((0, b"GIF89a"),)),
    ("webp", ((0, b"RIFF"), (8, b"WEBP"))),
    ("tiff", ((0, b"II*\x00"),)),
    ("tiff", ((0, b"MM\x00*"),)),
)

_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_PREAMBLE: Final = re.compile(r"(?:\s+|<!--.*?-->|<\?.*?\?>)*", re.DOTALL | re.ASCII)
_HTML_START: Final = re.compile(
    r"<(?:!doctype\s+html|html|head|body|script|title|meta)\b", re.IGNORECASE | re.ASCII
)
_XML_START: Final = re.compile(r"\s*<\?xml\b", re.IGNORECASE | re.ASCII)

_STRAY_CONTROLS: Final = frozenset(
    chr(code) for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\t\n\r\f"
)
_CHARS_PER_CONTROL: Final = 64
_MIN_CONTROLS: Final = 2


def detect_type(head: bytes) -> str | None:
    """The detected type of a file from its first bytes, or None when unknown.

    One of ``DETECTED_TYPES``: "pdf", "docx", "xlsx", "pptx", "zip", "ole" (legacy
    doc/xls/ppt: the OLE2 compound file), "rtf", "html", "xml", "png", "jpg", "gif",
    "webp", "tiff", "txt"; None for binary of no known kind and for an empty head.
    """
    head = head[:SNIFF_BYTES]
    if _PDF_MAGIC in head[:_PDF_WINDOW]:
        return "pdf"
    if head.startswith(_ZIP_MAGIC):
        return _zip_kind(head)
    for kind, parts in _SIGNATURES:
        if all(head.startswith(magic, offset) for offset, magic in parts):
            return kind
    return _markup_kind(head) or ("txt" if _is_text(head) else None)


def _zip_kind(head: bytes) -> str:
    """The OOXML kind named by a local file header in the head, else "zip"."""
    start = 0
    while (start := head.find(_ZIP_MAGIC, start)) >= 0:
        header = head[start : start + _ZIP_NAME_START]
        if len(header) < _ZIP_NAME_START:
            break
        size = int.from_bytes(header[_ZIP_NAME_LENGTH], "little")
        name = head[start + _ZIP_NAME_START : start + _ZIP_NAME_START + size]
        for prefix, kind in _OOXML_MEMBERS:
            if name.startswith(prefix):
                return kind
        start += _ZIP_NAME_START + size
    return "zip"


def _markup_text(head: bytes) -> str:
    """The head as text for markup checks: UTF-16 if it has a BOM, else byte-for-byte."""
    if head.startswith(_UTF16_BOMS):
        return head.decode("utf-16", errors="replace").removeprefix("\ufeff")
    return head.removeprefix(codecs.BOM_UTF8).decode("latin-1")


def _markup_kind(head: bytes) -> str | None:
    """The markup kind ("html" or "xml") from how the document starts, else None."""
    text = _markup_text(head)
    preamble = _PREAMBLE.match(text)
    body = text[preamble.end() :] if preamble else text
    if _HTML_START.match(body):
        return "html"
    if _XML_START.match(text):
        return "xml"
    return None


def _decode_prefix(head: bytes) -> str | None:
    """The head decoded as UTF-8 or BOM'd UTF-16, tolerating a cut-off last character."""
    codec = "utf-16" if head.startswith(_UTF16_BOMS) else "utf-8-sig"
    try:
        return codecs.getincrementaldecoder(codec)().decode(head, final=False)
    except UnicodeError:
        return None


def _is_text(head: bytes) -> bool:
    """Whether the head is readable text: decodes, no NUL, few stray controls."""
    text = _decode_prefix(head)
    if not text or "\x00" in text:
        return False
    stray = sum(char in _STRAY_CONTROLS for char in text)
    return stray <= max(_MIN_CONTROLS, len(text) // _CHARS_PER_CONTROL)


def _accepts(detected: frozenset[str], *claimed: str) -> dict[str, frozenset[str]]:
    """Rows of the compatibility table: each claimed type accepts ``detected``."""
    return dict.fromkeys(claimed, detected)


_ACCEPTS: Final[Mapping[str, frozenset[str]]] = {
    **_accepts(frozenset({"pdf"}), "pdf"),
    **_accepts(frozenset({"docx", "zip"}), "docx"),
    **_accepts(frozenset({"xlsx", "zip"}), "xlsx"),
    **_accepts(frozenset({"pptx", "zip"}), "pptx"),
    **_accepts(frozenset({"ole"}), "doc", "xls", "ppt", "msg"),
    **_accepts(frozenset({"zip"}), "odt", "ods", "odp", "epub"),
    **_accepts(frozenset({"zip", "docx", "xlsx", "pptx"}), "zip"),
    **_accepts(frozenset({"txt"}), "txt", "csv", "tsv", "md", "json"),
    **_accepts(frozenset({"html", "txt"}), "html", "htm"),
    **_accepts(frozenset({"xml", "txt"}), "xml"),
    **_accepts(frozenset({"rtf"}), "rtf"),
    **_accepts(frozenset({"jpg"}), "jpg", "jpeg"),
    **_accepts(frozenset({"tiff"}), "tiff", "tif"),
    **{kind: frozenset({kind}) for kind in ("png", "gif", "webp")},
}

_NEVER_HTML: Final[frozenset[str]] = frozenset(
    {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "msg", "rtf"}
    | {"odt", "ods", "odp", "epub", "zip"}
    | {"jpg", "jpeg", "png", "gif", "webp", "tiff", "tif"}
)


def compatible(*, claimed: str, detected: str | None) -> bool:
    """Whether a file detected as ``detected`` is an acceptable ``claimed`` type.

    ``claimed`` is already normalised (lowercase, no dot). An unknown detection
    (None) and an unknown claimed type are always compatible.
    """
    accepted = _ACCEPTS.get(claimed)
    return detected is None or accepted is None or detected in accepted


def is_html_instead(*, claimed: str, detected: str | None) -> bool:
    """True when an HTML page arrived for a claimed type that is never HTML.

    Never-HTML types are office formats, PDF, RTF, archives and images. Text-like
    claims (txt, csv, tsv, md, json), markup claims and unknown types give False.
    """
    return detected == "html" and claimed in _NEVER_HTML
