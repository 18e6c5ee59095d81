"""File names for downloaded documents.

This module owns every file name fetch-docs writes. It is pure: no I/O.

``safe_filename`` turns a document's title, URL and type into one safe path
component that is valid on ext4, APFS and NTFS: NFC-normalised, free of
separators, control/format characters and Windows-forbidden characters, not a
hidden file, not a Windows device name, and at most ``MAX_NAME_BYTES`` bytes
of UTF-8 with its extension intact.

``assign_names`` gives every URL a distinct name, where "distinct" means
distinct under ``casefold()`` (macOS and Windows are case-insensitive), keeps
names an earlier run already used, and is deterministic.

Decisions:

* The extension is always lowercase: ``report.PDF`` with type ``pdf`` becomes
  ``report.pdf``.
* A safe name is a fixed point of ``safe_filename(name=n, url="",
  document_type=None)``. ``assign_names`` uses that to refuse kept names from a
  tampered or outdated manifest (they are treated as new) and to re-sanitise
  wanted names, so its output is always safe whatever it is given.
"""

import hashlib
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_NAME_BYTES", "assign_names", "safe_filename"]

MAX_NAME_BYTES: int = 200
"""UTF-8 byte budget for a final file name.

Leaves room for ``.part`` and other suffixes under the 255-byte limit of
ext4/APFS/NTFS.
"""

_FALLBACK_STEM = "document"
_EDGE_CHARS = " ._"
_FORBIDDEN_CHARS = frozenset('/\\<>:"|?*')
_REPLACED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_WHITESPACE_RUN = re.compile(r"\s+")
_UNDERSCORE_RUN = re.compile(r"_{2,}")
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")
_TRAILING_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}\Z")
_URL_PATH_SEPARATORS = re.compile(r"[/\\]")
_RESERVED_STEMS = frozenset(
    {
        "con",
        "prn",
        "aux",
        "nul",
        "conin$",
        "conout$",
        *(f"com{digit}" for digit in "123456789¹²³"),
        *(f"lpt{digit}" for digit in "123456789¹²³"),
    }
)


def safe_filename(*, name: str, url: str, document_type: str | None) -> str:
    """A safe single-component file name for a document.

    The base is the cleaned ``name``, else the cleaned last segment of the URL
    path, else ``"document"``. The extension is ``document_type`` if it is 1-10
    ASCII alphanumerics (after stripping spaces and leading dots), else the
    URL path's extension under the same rule, else none; it is lowercase and
    not doubled when the base already ends with it.
    """
    base = _clean(name) or _clean(_url_segment(url)) or _FALLBACK_STEM
    extension = _pick_extension(document_type=document_type, url=url)
    if not extension:
        return _compose(stem=base, tail="")
    suffix = f".{extension}"
    return _compose(stem=_without_suffix(text=base, suffix=suffix), tail=suffix)


def assign_names(
    *,
    wanted: Mapping[str, str],
    keep: Mapping[str, str] | None = None,
    reserved: Iterable[str] = (),
) -> dict[str, str]:
    """Map each URL to a distinct file name.

    wanted: url -> desired (already safe) file name.
    keep: url -> name already used for that URL by an earlier run (from the
    manifest); these are honoured first when still wanted.
    reserved: names no new URL may take (files of other documents, or not ours).

    Names are distinct under ``casefold()``. Kept names are honoured in sorted
    URL order when still wanted, safe and not already taken; every other URL,
    in sorted order, gets its wanted name if free, else the name with
    ``-<8 hex of sha256(url)>`` before the extension, then ``-2``, ``-3``, ...
    The result is ordered by URL.
    """
    names = _kept_names(wanted=wanted, keep=keep or {})
    taken = {_collision_key(name) for name in [*names.values(), *reserved]}
    for url in sorted(wanted.keys() - names.keys()):
        desired = safe_filename(name=wanted[url], url="", document_type=None)
        name = _free_name(url=url, desired=desired, taken=taken)
        taken.add(_collision_key(name))
        names[url] = name
    return {url: names[url] for url in sorted(names)}


def _clean(text: str) -> str:
    """Normalise ``text`` and remove everything unsafe; may return ``""``."""
    text = unicodedata.normalize("NFC", text)
    text = "".join("_" if _is_replaced(char) else char for char in text)
    text = _WHITESPACE_RUN.sub(" ", text)
    text = _UNDERSCORE_RUN.sub("_", text)
    return unicodedata.normalize("NFC", text.strip(_EDGE_CHARS))


def _is_replaced(char: str) -> bool:
    """Whether ``char`` is a separator, Windows-forbidden or control character."""
    return char in _FORBIDDEN_CHARS or unicodedata.category(char) in _REPLACED_CATEGORIES


def _url_segment(url: str) -> str:
    """The percent-decoded last path segment of ``url``, or ``""``."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    return unquote(_URL_PATH_SEPARATORS.split(path)[-1])


def _pick_extension(*, document_type: str | None, url: str) -> str:
    """The lowercase extension (without dot) for a document, or ``""``."""
    from_type = (document_type or "").strip().lower().lstrip(".")
    from_url = posixpath.splitext(_url_segment(url))[1].lower().lstrip(".")
    for candidate in (from_type, from_url):
        if _EXTENSION.fullmatch(candidate):
            return candidate
    return ""


def _without_suffix(*, text: str, suffix: str) -> str:
    """``text`` without a trailing ASCII ``suffix`` matched case-insensitively."""
    tail = text[-len(suffix) :]
    if len(text) > len(suffix) and tail.isascii() and tail.lower() == suffix:
        return text[: -len(suffix)]
    return text


def _compose(*, stem: str, tail: str) -> str:
    """``stem + tail`` fitted to the byte budget and never a device name."""
    stem = _fit(stem=stem, tail=tail)
    if _is_reserved(stem + tail):
        stem = _fit(stem=f"_{stem}", tail=tail)
    return stem + tail


def _fit(*, stem: str, tail: str) -> str:
    """Cut ``stem`` so that ``stem + tail`` fits in ``MAX_NAME_BYTES`` bytes.

    The cut is on a character boundary, never between a character and its
    combining marks, and leaves no trailing space, dot or underscore.
    """
    budget = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    if len(stem.encode("utf-8")) <= budget:
        return stem
    cut = len(stem.encode("utf-8")[:budget].decode("utf-8", "ignore"))
    while cut > 0 and unicodedata.category(stem[cut]).startswith("M"):
        cut -= 1
    return stem[:cut].rstrip(_EDGE_CHARS) or _FALLBACK_STEM


def _is_reserved(name: str) -> bool:
    """Whether Windows treats ``name`` as a device (``CON``, ``nul.txt``, ...)."""
    return name.split(".", 1)[0].strip().casefold() in _RESERVED_STEMS


def _collision_key(name: str) -> str:
    """The key under which two names clash on a case-insensitive file system."""
    return unicodedata.normalize("NFC", name.casefold())


def _is_safe(name: str) -> bool:
    """Whether ``name`` is one that ``safe_filename`` could have produced."""
    return name == safe_filename(name=name, url="", document_type=None)


def _kept_names(*, wanted: Mapping[str, str], keep: Mapping[str, str]) -> dict[str, str]:
    """The kept names still honoured: wanted, safe and first to claim their key."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for url in sorted(keep.keys() & wanted.keys()):
        name = keep[url]
        key = _collision_key(name)
        if key not in taken and _is_safe(name):
            names[url] = name
            taken.add(key)
    return names


def _free_name(*, url: str, desired: str, taken: set[str]) -> str:
    """``desired`` if free, else a hashed variant of it that is free."""
    if _collision_key(desired) not in taken:
        return desired
    match = _TRAILING_EXTENSION.search(desired)
    split = match.start() if match and match.start() > 0 else len(desired)
    # Re-clean the stem: a device-name guard ("_con") is not needed once suffixed.
    stem, extension = _clean(desired[:split]) or _FALLBACK_STEM, desired[split:]
    tag = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    candidate = _compose(stem=stem, tail=f"-{tag}{extension}")
    attempt = 2
    while _collision_key(candidate) in taken:
        candidate = _compose(stem=stem, tail=f"-{tag}-{attempt}{extension}")
        attempt += 1
    return candidate
