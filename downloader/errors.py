"""Everything fetch-docs raises, and the exit code each one means.

Exception tree::

    FetchDocsError                  base class; ``exit_code`` says how the CLI exits
    ├── UsageError                  2  bad flag, bad value, bad job id or key format
    │   └── ConfigError             2  bad or unreadable config file
    ├── OutputError                 2  the output folder or its manifest is unusable
    │   └── NoSpace                 2  the claimed sizes exceed the free space
    ├── FolderLocked                5  another run is writing the output folder
    ├── ApiError                    3  Skop answered, but not with usable results
    │   ├── AuthError               3  401/403: missing, invalid or under-scoped key
    │   ├── JobNotFound             3  404: job not found or access denied
    │   ├── ServerError             3  5xx (after retries) or another unexpected status
    │   ├── BadResponse             3  the body is not JSON or breaks the schema
    │   └── ApiUnreachable          3  connection failed, timed out (after retries)
    ├── JobNotReady                 4  the job is pending, running, failed or cancelled
    ├── Interrupted               130  stopped by SIGINT (143: SIGTERM) before downloads
    └── DocumentError               1  one document could not be fetched; recorded in
        │                              the manifest, never raised past the pipeline
        ├── HttpStatusError            the document host answered 4xx/5xx
        ├── TransferError              connection failed, reset, timed out
        ├── IncompleteBody             fewer bytes than Content-Length said
        ├── TooLarge                   more bytes than --max-size-mb allows
        ├── DiskError                  the file could not be written (disk full, permissions)
        ├── ContentMismatch            an HTML page arrived for a claimed pdf/doc/docx/...
        └── UnsafeUrl                  not http(s), or redirected somewhere refused

``Interrupted`` (130; 143 for SIGTERM) is raised when a stop was asked for before
downloads began; once they run, a stop returns a summary marked interrupted.
Transport exceptions of aiohttp are turned into these in exactly one place per
client (``api._request`` and ``fetch._transfer``).
"""

from __future__ import annotations

from errno import EDQUOT, EFBIG, ENOSPC

EXIT_OK = 0
EXIT_DOCUMENTS_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_JOB_NOT_READY = 4
EXIT_LOCKED = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class FetchDocsError(Exception):
    """Base class of every error fetch-docs raises on purpose.

    ``retryable`` and ``retry_after`` (seconds the server asked for) drive
    :func:`downloader.retry.with_retries`.
    """

    exit_code: int = EXIT_USAGE
    retryable: bool = False
    retry_after: float | None = None


class UsageError(FetchDocsError):
    """A flag, value, job id or key that cannot be used."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The config file is missing, unreadable, not TOML, or has a bad key or value."""


class OutputError(FetchDocsError):
    """The output folder cannot be created or written, or its manifest is unreadable."""

    exit_code = EXIT_USAGE


class FolderLocked(FetchDocsError):
    """Another fetch-docs run is writing the same output folder."""

    exit_code = EXIT_LOCKED


class NoSpace(OutputError):
    """The selected documents claim more bytes than the output folder has free."""


class ApiError(FetchDocsError):
    """Skop did not answer with usable results."""

    exit_code = EXIT_API


class AuthError(ApiError):
    """401 or 403: the key is missing, invalid, or lacks the scope."""


class JobNotFound(ApiError):
    """404: the job does not exist or the key may not see it (Skop does not say which)."""


class _StatusError(FetchDocsError):
    """An error that is an HTTP status; retryable when the status is."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = status in RETRYABLE_STATUSES


class ServerError(_StatusError, ApiError):
    """5xx or 429 after retries, or a status the client has no meaning for."""


class BadResponse(ApiError):
    """The body is not valid JSON, or does not match the documented schema."""


class ApiUnreachable(ApiError):
    """The API host could not be reached (DNS, refused, reset, timeout) after retries."""

    retryable = True


class Interrupted(FetchDocsError):
    """The run was stopped (SIGINT, SIGTERM) before it could finish."""

    exit_code = EXIT_INTERRUPTED


class JobNotReady(FetchDocsError):
    """The job has not completed: it is pending, running, failed or cancelled."""

    exit_code = EXIT_JOB_NOT_READY

    def __init__(self, message: str, *, job_id: str, status: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status


class DocumentError(FetchDocsError):
    """One document could not be fetched. Recorded per document, never fatal."""

    exit_code = EXIT_DOCUMENTS_FAILED


class HttpStatusError(_StatusError, DocumentError):
    """The document host answered with an error status."""


class TransferError(DocumentError):
    """The connection failed, was reset, or timed out."""

    retryable = True


class IncompleteBody(DocumentError):
    """The body ended before Content-Length bytes arrived."""

    retryable = True


class TooLarge(DocumentError):
    """The body grew past the --max-size-mb limit."""


class DiskError(DocumentError):
    """The document could not be written to disk."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    @property
    def out_of_space(self) -> bool:
        """True when no later write can succeed either (disk full, quota, size limit)."""
        return self.errno in {ENOSPC, EDQUOT, EFBIG}


class ContentMismatch(DocumentError):
    """The bytes are not the claimed kind of document (an HTML page for a pdf)."""


class UnsafeUrl(DocumentError):
    """The URL (or a redirect) is not http(s) or points somewhere refused."""


RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
