"""Deterministic demo-server contents for each benchmark scenario.

``build_state(spec)`` is called twice with the same spec: by ``server.py`` (in the server
process, to serve it) and by ``run.py`` (in the bench process, to know the truth: the
sha256 of every document). Every generator is a pure function of the spec, so both
sides agree byte for byte without asking the server.

Specs: ``small``, ``large:<MiB>``, ``many``, ``scale`` (one server, three jobs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from downloader.demo import (
    DemoDocument,
    DemoJob,
    DemoState,
    Faults,
    bulk_job,
    make_document,
)

MIB = 1024 * 1024
KIB = 1024

SMALL_JOB = "job_small"
SMALL_COUNT = 400
SMALL_WANTED = 185  # documents with confidence >= SMALL_MIN_CONFIDENCE
SMALL_MIN_CONFIDENCE = 0.8
SMALL_LATENCY = 0.040

LARGE_JOB = "job_large"
LARGE_COUNT = 6

MANY_JOB = "job_many"
MANY_COUNT = 10_000
MANY_SIZE = 2 * KIB
MANY_LATENCY = 0.005

SCALE_SIZES = (1_000, 10_000, 100_000)

BLOB_JOB = "job_blob"
BLOB_PATH = "/__blob.bin"
BLOB_SIZE = 200 * MIB  # served once per latency-bound scenario to measure loopback speed


def scale_job_id(count: int) -> str:
    """Job id of the ``scale`` job with ``count`` documents (``job_scale10k``)."""
    return f"job_scale{count // 1000}k"


def fast_body(seed: str, size: int, *, magic: bytes = b"%PDF-1.4\n") -> bytes:
    """``size`` bytes: ``magic`` then a repeated sha256 of ``seed``; fast for 100s of MiB."""
    unit = hashlib.sha256(seed.encode()).digest() * (MIB // 32)  # 1 MiB
    body = magic + unit * (size // MIB + 1)
    return body[:size]


def _small_documents() -> list[DemoDocument]:
    """400 documents of 20-200 KiB; exactly SMALL_WANTED have confidence >= 0.8."""
    documents = []
    for index in range(SMALL_COUNT):
        rank = (index * 173) % SMALL_COUNT  # a permutation of 0..399 (173 is prime to 400)
        if rank < SMALL_WANTED:
            confidence = 0.8 + 0.19 * rank / (SMALL_WANTED - 1)  # 0.8 (kept: equal) .. 0.99
        else:
            confidence = 0.3 + 0.49 * (rank - SMALL_WANTED) / (SMALL_COUNT - SMALL_WANTED - 1)
        kind = {3: "docx", 7: "txt"}.get(index % 10, "pdf")
        spread = ((index * 7919) % SMALL_COUNT) / (SMALL_COUNT - 1)
        documents.append(
            make_document(
                path=f"/small/doc-{index:03d}.{kind}",
                document_type=kind,
                size=20 * KIB + round(spread * 180 * KIB),
                name=f"Council record {index:03d}",
                confidence_score=round(confidence, 3),
                source_page=f"/small/page-{index // 20}",
            )
        )
    return documents


def _large_documents(mib: int) -> list[DemoDocument]:
    return [
        DemoDocument(
            path=f"/large/big-{index}.pdf",
            name=f"Large scan {index}",
            document_type="pdf",
            confidence_score=0.9,
            source_page="/large",
            body=fast_body(f"large:{mib}:{index}", mib * MIB),
        )
        for index in range(LARGE_COUNT)
    ]


def _blob_job() -> DemoJob:
    blob = DemoDocument(
        path=BLOB_PATH,
        name="blob",
        document_type="bin",
        confidence_score=0.5,
        source_page="/",
        body=fast_body("blob", BLOB_SIZE, magic=b""),
        faults=Faults(latency=0.0),  # the loopback measurement skips the scenario's latency
    )
    return DemoJob(job_id=BLOB_JOB, documents=[blob])


def build_state(spec: str) -> DemoState:
    """The DemoState for a server spec (see the module docstring)."""
    kind, _, arg = spec.partition(":")
    if kind == "small":
        jobs = [DemoJob(job_id=SMALL_JOB, documents=_small_documents()), _blob_job()]
        return DemoState(jobs=jobs, latency=SMALL_LATENCY)
    if kind == "large":
        return DemoState(jobs=[DemoJob(job_id=LARGE_JOB, documents=_large_documents(int(arg)))])
    if kind == "many":
        jobs = [bulk_job(job_id=MANY_JOB, count=MANY_COUNT, size=MANY_SIZE), _blob_job()]
        return DemoState(jobs=jobs, latency=MANY_LATENCY)
    if kind == "scale":
        return DemoState(
            jobs=[bulk_job(job_id=scale_job_id(n), count=n, size=KIB) for n in SCALE_SIZES]
        )
    raise ValueError(f"unknown server spec {spec!r}")


def truth(documents: Iterable[DemoDocument], *, min_confidence: float = 0.0) -> dict[str, str]:
    """Path -> hex sha256 of the body, for the documents a tool should fetch."""
    return {
        doc.path: hashlib.sha256(doc.body).hexdigest()
        for doc in documents
        if doc.confidence_score >= min_confidence
    }
