"""The Skop client: the only code that knows Skop's URLs, formats and error bodies."""

from __future__ import annotations

import re
import time
from typing import Final, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from downloader.config import describe_validation_error
from downloader.errors import (
    ApiError,
    ApiUnreachable,
    AuthError,
    BadResponse,
    JobNotFound,
    ServerError,
    UsageError,
)
from downloader.models import JOB_ID_PATTERN, ApiErrorBody, JobResults, JobStatus
from downloader.retry import RetryPolicy, parse_retry_after, with_retries

M = TypeVar("M", bound=BaseModel)

KEY_PATTERN: Final = re.compile(r"^sk[-_][A-Za-z0-9]+$")
JOB_ID_RE: Final = re.compile(JOB_ID_PATTERN)


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if Skop could know it, else raise a UsageError before any request."""
    if not JOB_ID_RE.fullmatch(job_id):
        msg = f"invalid job id {job_id!r}: expected 'job_' then lowercase letters and digits"
        raise UsageError(msg)
    return job_id


def check_api_key(key: str | None) -> str:
    """Return ``key`` if it has Skop's format, else raise a UsageError (never echoing it)."""
    if not key:
        msg = "no Skop API key: set SKOP_API_KEY (or api_key in the config file, or --api-key)"
        raise UsageError(msg)
    if not KEY_PATTERN.fullmatch(key):
        msg = "the Skop API key is malformed: expected 'sk-' or 'sk_' then letters and digits"
        raise UsageError(msg)
    return key


class SkopClient:
    """Calls the Skop API over a session owned by the caller; the key goes to Skop only."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        api_url: str,
        api_key: str,
        policy: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        self._session = session
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {check_api_key(api_key)}"}
        self._policy = policy
        self._timeout = timeout

    async def results(self, job_id: str) -> JobResults:
        """``GET /scrape/results/{job_id}``, validated."""
        return await self._get(f"/scrape/results/{check_job_id(job_id)}", JobResults, job_id)

    async def status(self, job_id: str) -> JobStatus:
        """``GET /scrape/status/{job_id}``, validated."""
        return await self._get(f"/scrape/status/{check_job_id(job_id)}", JobStatus, job_id)

    async def _get(self, path: str, model: type[M], job_id: str) -> M:
        url = f"{self._base}{path}"
        body = await with_retries(lambda _: self._request(url, job_id), policy=self._policy)
        return parse_body(body, model=model, url=url)

    async def _request(self, url: str, job_id: str) -> bytes:
        """One GET; the one place where aiohttp's errors become ours."""
        try:
            async with self._session.get(
                url, headers=self._headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    raise _status_error(response, body=body, url=url, job_id=job_id)
                return body
        except aiohttp.ClientError as exc:
            msg = f"cannot reach Skop at '{url}': {_describe(exc)}"
            raise ApiUnreachable(msg) from exc
        except TimeoutError as exc:
            msg = f"Skop did not answer in time for url '{url}'"
            raise ApiUnreachable(msg) from exc


def parse_body(body: bytes, *, model: type[M], url: str) -> M:
    """``body`` validated as ``model``, or a BadResponse naming the broken field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        msg = f"Skop sent an unusable answer for url '{url}': {_explain(exc)}"
        raise BadResponse(msg) from exc


def _status_error(
    response: aiohttp.ClientResponse, *, body: bytes, url: str, job_id: str
) -> ApiError:
    """The error for a 4xx/5xx answer, carrying the server's own message."""
    status = response.status
    said = _server_message(body)
    head = f"{status} {response.reason or ''}".strip() + f" for url '{url}'" + said
    if status in {401, 403}:
        return AuthError(f"{head}; check SKOP_API_KEY: the key is missing, invalid or lacks scope")
    if status == 404:
        return JobNotFound(f"job {job_id} not found or access denied ({head})")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None and status == 429:
        retry_after = _reset_seconds(response.headers.get("X-Rate-Limit-Reset"))
    return ServerError(f"Skop answered {head}", status=status, retry_after=retry_after)


def _server_message(body: bytes) -> str:
    """``": <message>"`` from Skop's JSON error body, or nothing."""
    try:
        error = ApiErrorBody.model_validate_json(body)
    except ValidationError:
        return ""
    parts = [part for part in (error.message, error.suggested_action) if part]
    return f": {'; '.join(parts)}" if parts else ""


def _reset_seconds(value: str | None) -> float | None:
    """Seconds until ``X-Rate-Limit-Reset`` (an epoch time, or seconds when small)."""
    try:
        reset = float(value) if value else None
    except ValueError:
        return None
    if reset is None:
        return None
    return max(0.0, reset - time.time()) if reset > 1e9 else reset


def _explain(exc: ValidationError) -> str:
    """Name the broken field, or say the body was not JSON."""
    if exc.errors()[0]["type"] == "json_invalid":
        return "the body is not valid JSON"
    return describe_validation_error(exc, prefix="field ", dashes=False)


def _describe(exc: aiohttp.ClientError) -> str:
    return str(exc) or type(exc).__name__
