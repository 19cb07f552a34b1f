"""The webhook's HTTP application (Starlette, served over TLS by uvicorn).

Routes: ``POST /validate`` and ``POST /mutate`` take an AdmissionReview and always answer one
when a request uid can be read; ``GET /healthz``; ``GET /metrics`` in the Prometheus text
exposition format (request counts by endpoint and decision and a latency histogram; written
here directly because two metric families do not justify another dependency).

Bodies are read with a size bound (``maxBodyBytes``: 413 past it) and a malformed review is
answered 400 with one line naming the fault. An internal error while evaluating answers per
``failOpen`` (allowed or denied) with the error in ``status.message``. Every decision is one
JSON line in the decision log (stderr or ``log.file``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from garrison.admission.config import AdmissionConfig
from garrison.admission.policy import Decision, Engine
from garrison.admission.review import AdmissionRequest, ReviewError, build_response, parse_review, peek_uid

log = logging.getLogger("garrison.admission")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DecisionLog:
    """One JSON object per line; thread-safe."""

    def __init__(self, path: str = "") -> None:
        self._own = bool(path) and path != "-"
        self._out: IO[str] = open(path, "a", encoding="utf-8", buffering=1) if self._own else sys.stderr  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._own:
            self._out.close()


class Metrics:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.total = 0
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, endpoint: str, decision: str, seconds: float) -> None:
        with self._lock:
            key = (endpoint, decision)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.total += 1
            self.sum += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def render(self) -> str:
        lines = [
            "# HELP garrison_admission_requests_total Admission requests answered, by endpoint and decision.",
            "# TYPE garrison_admission_requests_total counter",
        ]
        with self._lock:
            for (endpoint, decision), n in sorted(self.counts.items()):
                lines.append(f'garrison_admission_requests_total{{endpoint="{endpoint}",decision="{decision}"}} {n}')
            lines += [
                "# HELP garrison_admission_request_duration_seconds Time to answer an admission request.",
                "# TYPE garrison_admission_request_duration_seconds histogram",
            ]
            lines += [
                f'garrison_admission_request_duration_seconds_bucket{{le="{b:g}"}} {c}'
                for b, c in zip(BUCKETS, self.buckets, strict=True)
            ]
            lines.append(f'garrison_admission_request_duration_seconds_bucket{{le="+Inf"}} {self.total}')
            lines.append(f"garrison_admission_request_duration_seconds_sum {self.sum:.6f}")
            lines.append(f"garrison_admission_request_duration_seconds_count {self.total}")
        return "\n".join(lines) + "\n"


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _event(req: AdmissionRequest, decision: Decision, endpoint: str, started: float, cfg: AdmissionConfig) -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "endpoint": endpoint,
        "uid": req.uid,
        "namespace": req.namespace,
        "kind": req.object_kind,
        "name": req.object_name,
        "operation": req.operation,
        "user": req.user.username,
        "dry_run_request": req.dry_run,
        "decision": decision.label,
        "dry_run": cfg.mode == "dry-run" or decision.would_deny,
        "exempt": decision.exempt,
        "policies_failed": sorted({v.policy for v in decision.violations}),
        "violations": [{"policy": v.policy, "mode": v.mode, "message": v.message} for v in decision.violations],
        "warnings": len(decision.warnings),
        "patch_ops": len(decision.patch),
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


def create_app(engine: Engine, decision_log: DecisionLog | None = None) -> Starlette:
    cfg = engine.cfg
    dlog = decision_log or DecisionLog(cfg.log_file)
    metrics = Metrics()

    async def review(request: Request, endpoint: str) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, cfg.max_body_bytes)
        except _TooLarge:
            metrics.observe(endpoint, "invalid", time.perf_counter() - started)
            return JSONResponse({"error": f"body larger than {cfg.max_body_bytes} bytes"}, status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            req = parse_review(body)
        except ReviewError as err:
            metrics.observe(endpoint, "invalid", time.perf_counter() - started)
            uid = err.uid
            if uid:
                # a readable uid gets an AdmissionReview answer the API server can show
                out = build_response(uid, allowed=False, message=str(err), code=400, reason="BadRequest")
                return JSONResponse(out, status_code=400)
            return JSONResponse({"error": str(err)}, status_code=400)
        fn = engine.validate if endpoint == "validate" else engine.mutate
        try:
            decision = await run_in_threadpool(fn, req) if engine.may_block else fn(req)
        except Exception as err:  # any internal fault answers per failOpen, never a bare 500
            log.exception("admission: internal error on %s", req.uid)
            message = f"garrison admission internal error: {type(err).__name__}: {err}"
            decision = Decision(allowed=cfg.fail_open, message=message, code=0 if cfg.fail_open else 500)
            decision.reason = "" if cfg.fail_open else "InternalError"
            if cfg.fail_open:
                decision.warnings.append(message)
        out = build_response(
            req.uid,
            allowed=decision.allowed,
            message=decision.message,
            code=decision.code,
            reason=decision.reason,
            warnings=decision.warnings,
            patch=decision.patch,
        )
        dlog.write(_event(req, decision, endpoint, started, cfg))
        metrics.observe(endpoint, decision.label, time.perf_counter() - started)
        return JSONResponse(out)

    async def validate(request: Request) -> Response:
        return await review(request, "validate")

    async def mutate(request: Request) -> Response:
        return await review(request, "mutate")

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def metrics_route(_request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        engine.close()
        dlog.close()

    app = Starlette(
        routes=[
            Route("/validate", validate, methods=["POST"]),
            Route("/mutate", mutate, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return app


__all__ = ["DecisionLog", "Metrics", "create_app", "peek_uid"]
