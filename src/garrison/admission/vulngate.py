"""The vulnerability gate: deny images with fixable findings at or above a severity.

Scan results come from a cache built ahead of time: a ``garrison scan image --format json``
output, a JSON object mapping image references to such outputs, a JSON list of them, or a
directory of ``*.json`` files of either kind. Each result is indexed under every name its image
goes by (the scanned reference, repo tags, repo digests, the manifest digest and image id), so a
pod's ``repo@sha256:...`` reference matches a result by digest. On a miss the gate can scan the
image with :func:`garrison.scan.pipeline.scan_image` in a worker thread within a time budget;
what a miss or a timeout answers (allow, deny or warn) is configurable.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.admission.config import VulnConfig
from garrison.core.errors import ConfigError, GarrisonError, NotFoundError
from garrison.model import Severity

log = logging.getLogger("garrison.admission")


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class VulnHit:
    id: str
    package: str
    installed: str
    severity: Severity
    fixed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GateAnswer:
    """``verdict``: ``pass``, ``fail`` (``hits`` set), ``miss`` or ``timeout`` (then ``action``
    is the configured answer) or ``error``."""

    image: str
    verdict: str
    hits: tuple[VulnHit, ...] = ()
    action: str = ""
    message: str = ""


def _hits(doc: dict[str, Any]) -> list[VulnHit]:
    out: list[VulnHit] = []
    for finding in doc.get("findings") or ():
        if not isinstance(finding, dict) or finding.get("kind") != "vulnerability":
            continue
        vuln = _map(finding.get("vulnerability"))
        pkg = _map(vuln.get("package"))
        fixed = vuln.get("fixed_versions") or ()
        out.append(
            VulnHit(
                id=str(finding.get("id", "")),
                package=str(pkg.get("name", "")),
                installed=str(vuln.get("installed_version", "")),
                severity=Severity.parse(str(finding.get("severity", ""))),
                fixed=tuple(str(v) for v in fixed) if isinstance(fixed, list) else (),
            )
        )
    return out


def image_keys(ref: str) -> list[str]:
    """Names to look ``ref`` up by: the reference itself, its digest, and without ``docker.io/``."""
    keys = [ref]
    if "@" in ref:
        keys.append(ref.rsplit("@", 1)[1])
    keys.extend(ref[len(p) :] for p in ("docker.io/library/", "docker.io/", "index.docker.io/") if ref.startswith(p))
    return keys


def _names(doc: dict[str, Any]) -> list[str]:
    art = _map(doc.get("artifact"))
    names: list[str] = []
    for key in ("name", "digest", "image_id"):
        value = art.get(key)
        if isinstance(value, str) and value:
            names.append(value)
    for key in ("repo_tags", "repo_digests"):
        for value in art.get(key) or ():
            if isinstance(value, str) and value:
                names.append(value)
                if "@" in value:
                    names.append(value.rsplit("@", 1)[1])
    return names


class VulnIndex:
    """Image name -> findings, built once from the cache."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[VulnHit]] = {}

    def add(self, doc: Any, source: str, extra_names: tuple[str, ...] = ()) -> None:
        if not isinstance(doc, dict) or "findings" not in doc:
            raise ConfigError("not a garrison scan JSON result (no findings)", input_name=source)
        hits = _hits(doc)
        for name in (*_names(doc), *extra_names):
            self.by_name[name] = hits

    def load(self, path: Path) -> None:
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if not path.exists():
            raise NotFoundError("no such vulnerability cache", input_name=str(path))
        for file in files:
            try:
                doc = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError) as err:
                raise ConfigError(f"unreadable scan cache: {err}", input_name=str(file)) from None
            if isinstance(doc, list):
                for item in doc:
                    self.add(item, str(file))
            elif isinstance(doc, dict) and "findings" not in doc:
                for ref, item in doc.items():
                    self.add(item, f"{file}[{ref}]", (str(ref),))
            else:
                self.add(doc, str(file))

    def lookup(self, ref: str) -> list[VulnHit] | None:
        for key in image_keys(ref):
            hits = self.by_name.get(key)
            if hits is not None:
                return hits
        return None


class VulnGate:
    def __init__(self, cfg: VulnConfig) -> None:
        self.cfg = cfg
        self.threshold = Severity.parse(cfg.severity)
        self.index = VulnIndex()
        if cfg.cache:
            self.index.load(Path(cfg.cache))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="garrison-scan") if cfg.scan_on_miss else None
        self._pending: dict[str, Future[list[VulnHit]]] = {}
        self._lock = threading.Lock()

    @property
    def may_block(self) -> bool:
        return self._pool is not None

    def _scan(self, ref: str) -> list[VulnHit]:
        from garrison.report.json import json_document
        from garrison.scan.pipeline import ScanOptions, scan_image

        opts = ScanOptions(scanners=frozenset({"vuln"}), db_path=Path(self.cfg.db_path) if self.cfg.db_path else None)
        doc = json_document(scan_image(ref, opts))
        with self._lock:
            self.index.add(doc, ref, (ref,))
            self._pending.pop(ref, None)
        return _hits(doc)

    def failing(self, hits: list[VulnHit]) -> tuple[VulnHit, ...]:
        return tuple(
            h for h in hits if h.severity >= self.threshold and (h.fixed or not self.cfg.fixed_only)
        )

    def check(self, ref: str) -> GateAnswer:
        hits = self.index.lookup(ref)
        if hits is None and self._pool is not None:
            with self._lock:
                fut = self._pending.get(ref)
                if fut is None:
                    fut = self._pool.submit(self._scan, ref)
                    self._pending[ref] = fut
            try:
                hits = fut.result(timeout=self.cfg.scan_timeout_seconds)
            except FutureTimeout:
                # the scan goes on and fills the index for the next request
                return GateAnswer(
                    ref, "timeout", action=self.cfg.on_timeout,
                    message=f"scan of {ref} did not finish within {self.cfg.scan_timeout_seconds:g}s",
                )
            except GarrisonError as err:
                with self._lock:
                    self._pending.pop(ref, None)
                return GateAnswer(ref, "miss", action=self.cfg.on_miss, message=f"scan of {ref} failed: {err}")
        if hits is None:
            return GateAnswer(ref, "miss", action=self.cfg.on_miss, message=f"no scan result for {ref}")
        bad = self.failing(hits)
        return GateAnswer(ref, "fail" if bad else "pass", bad)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
