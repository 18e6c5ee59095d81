"""Deterministic document bytes for the demo server: PDF, DOCX, plain text and filler.

Every generator is a pure function of its arguments (seeded with ``hashlib.shake_256``,
no global random state), so the same call always yields the same bytes, and hits the
requested size exactly unless that is below the format's minimum (then the minimal
valid file is returned).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from xml.sax.saxutils import escape

__all__ = [
    "content_type_for",
    "docx_bytes",
    "filler",
    "make_body",
    "pdf_bytes",
    "prose",
    "text_bytes",
]

_CONTENT_TYPES: Mapping[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "doc": "application/msword",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "txt": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "rtf": "application/rtf",
}

_VOCAB = (
    "board",
    "council",
    "meeting",
    "minutes",
    "agenda",
    "budget",
    "motion",
    "seconded",
    "approved",
    "report",
    "annual",
    "public",
    "hearing",
    "committee",
    "finance",
    "zoning",
    "ordinance",
    "resolution",
    "member",
    "chair",
    "quorum",
    "session",
    "record",
    "amended",
    "adopted",
    "district",
    "review",
    "capital",
    "project",
    "vote",
    "unanimous",
    "notice",
    "item",
    "discussion",
    "staff",
    "recommendation",
    "fiscal",
)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_DATE = (2024, 3, 12, 9, 30, 0)
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_DOCX_TYPES = (
    f'{_XML_DECL}<Types xmlns="{_PKG}/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_DOCX_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_OFFICE_REL}" Target="word/document.xml"/>'
    "</Relationships>"
)
_COMMENT_OVERHEAD = len(b"<!---->")


def content_type_for(document_type: str) -> str:
    """The Content-Type a web server would send for a claimed document type."""
    return _CONTENT_TYPES.get(document_type.lower(), "application/octet-stream")


def filler(seed: str, size: int) -> bytes:
    """``size`` pseudo-random bytes derived from ``seed``."""
    return hashlib.shake_256(seed.encode()).digest(max(size, 0))


def prose(seed: str, size: int) -> str:
    """ASCII pseudo-text of exactly ``size`` characters, lines of twelve words."""
    if size <= 0:
        return ""
    picks = filler(f"prose:{seed}", size // 4 + 16)  # every word takes >= 4 characters
    words = [_VOCAB[b % len(_VOCAB)] for b in picks]
    lines = (" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, len(words), 12))
    return "\n".join(lines)[:size]


def make_body(*, document_type: str, size: int, seed: str, title: str = "") -> bytes:
    """Bytes of a file of the claimed type: pdf, docx, text-like types, doc, or filler."""
    kind = document_type.lower()
    if kind == "pdf":
        return pdf_bytes(seed=seed, size=size, title=title)
    if kind == "docx":
        return docx_bytes(seed=seed, size=size, title=title)
    if kind in {"txt", "csv", "md"}:
        return text_bytes(seed=seed, size=size, title=title)
    if kind in {"doc", "xls"}:
        return (_OLE_MAGIC + filler(seed, size - len(_OLE_MAGIC)))[: max(size, 0)]
    return filler(seed, size)


def text_bytes(*, seed: str, size: int, title: str = "") -> bytes:
    """UTF-8 text: the title, an underline, then prose; ends with a newline."""
    if size <= 0:
        return b""
    header = f"{title}\n{'=' * 40}\n\n".encode() if title else b""
    if len(header) + 1 > size:
        header = b""
    return header + prose(seed, size - len(header) - 1).encode() + b"\n"


def pdf_bytes(*, seed: str, size: int, title: str = "") -> bytes:
    """A one-page PDF 1.4 with a text line, an unreferenced filler stream and an xref."""
    text = _pdf_string(title or "Document")
    content = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        _pdf_stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    # Fixed-width numbers make the length linear in the padding, so one pass is exact.
    pad = max(0, size - len(_pdf_assemble([*objects, _pdf_stream(b"")])))
    return _pdf_assemble([*objects, _pdf_stream(filler(f"pdf:{seed}", pad))])


def _pdf_string(title: str) -> bytes:
    raw = title.encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _pdf_stream(data: bytes) -> bytes:
    return b"<< /Length %010d >>\nstream\n" % len(data) + data + b"\nendstream"


def _pdf_assemble(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%010d\n%%%%EOF\n" % xref
    return bytes(out)


def docx_bytes(*, seed: str, size: int, title: str = "") -> bytes:
    """A minimal WordprocessingML package (stored zip), padded with an XML comment."""
    length = size
    while True:
        document = _docx_document(title, prose(f"docx:{seed}", length))
        pad = size - len(_docx_zip(document))
        if pad >= _COMMENT_OVERHEAD or length == 0:
            break
        length = max(0, length - (_COMMENT_OVERHEAD - pad) - 32)
    if pad >= _COMMENT_OVERHEAD:
        document += b"<!--" + b"x" * (pad - _COMMENT_OVERHEAD) + b"-->"
    return _docx_zip(document)


def _docx_document(title: str, text: str) -> bytes:
    lines = [title or "Document", *text.splitlines()]
    paragraphs = "".join(f"<w:p><w:r><w:t>{escape(line)}</w:t></w:r></w:p>" for line in lines)
    xml = f'{_XML_DECL}<w:document xmlns:w="{_WORD_NS}"><w:body>{paragraphs}<w:sectPr/></w:body>'
    return (xml + "</w:document>").encode()


def _docx_zip(document: bytes) -> bytes:
    parts = {
        "[Content_Types].xml": _DOCX_TYPES.encode(),
        "_rels/.rels": _DOCX_RELS.encode(),
        "word/document.xml": document,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, mode="w") as archive:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
