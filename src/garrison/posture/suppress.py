"""Suppressions for posture results: a suppressed failure becomes ``Verdict.SKIP`` with the reason in
``details["suppression"]`` (and where it came from in ``details["suppressed_by"]``).

Sources, in the order they are tried:

* Kubernetes annotations on the resource or on its pod template:
  ``garrison.dev/ignore: "GK-W-001,GK-W-002"`` with an optional ``garrison.dev/ignore-reason``;
  per container ``container.garrison.dev/<container name>: GK-W-001`` (only failures whose object
  paths point into that container); checkov's ``checkov.io/skip<N>: CKV_K8S_20=reason``, mapped to
  our controls through their ``references`` metadata.
* Inline YAML comments ``# garrison:ignore=ID[,ID] reason`` on the failing line or the line before.
* An exceptions file (YAML, see :func:`load_exceptions`): control id and resource selector with
  globs, justification (required), owner and expiry date. Expired exceptions stop applying and
  produce a warning.
* A baseline file (:func:`write_baseline` / :func:`load_baseline`): fingerprints of known failures
  (control id, subject reference, file and object paths — no line numbers, so moving lines does not
  change them). The outcome reports how many baseline entries no longer occur.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import ConfigError, InputError
from garrison.posture.k8s.objects import K8sObject, pod_templates
from garrison.posture.model import Control, ControlResult, Verdict

IGNORE = "garrison.dev/ignore"
IGNORE_REASON = "garrison.dev/ignore-reason"
CONTAINER_PREFIX = "container.garrison.dev/"
_CHECKOV_KEY = re.compile(r"^checkov\.io/skip\d*$")
_INLINE = re.compile(r"#\s*garrison:ignore=([A-Za-z0-9_*,.-]+)[ \t]*(.*)$")
_CONTAINER_PATH = re.compile(r"^(.*spec)\.(containers|initContainers|ephemeralContainers)\[(\d+)\]")
_MAX_FILE_BYTES = 8 << 20
BASELINE_VERSION = 1


class SuppressionError(InputError):
    """An exceptions or baseline file is malformed."""


# --- exceptions file ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExceptionRule:
    """One entry of an exceptions file. ``id``, ``kind``, ``namespace`` and ``name`` are globs."""

    id: str
    justification: str
    kind: str = "*"
    namespace: str = "*"
    name: str = "*"
    owner: str = ""
    expires: dt.date | None = None

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def matches(self, result: ControlResult) -> bool:
        subject = result.subject
        return (
            fnmatch.fnmatchcase(result.control.id, self.id)
            and fnmatch.fnmatchcase(subject.kind, self.kind)
            and fnmatch.fnmatchcase(subject.namespace, self.namespace)
            and fnmatch.fnmatchcase(subject.name, self.name)
        )

    def describe(self) -> str:
        return f"{self.id} on {self.kind}/{self.namespace}/{self.name}"


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", input_name=str(path)) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", input_name=str(path)) from None
    if len(raw) > _MAX_FILE_BYTES:
        raise SuppressionError("file too large", input_name=str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SuppressionError("not UTF-8 text", input_name=str(path)) from None


def _field(raw: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise SuppressionError(f"'{key}' must be a string", input_name=where)
    return str(value).strip()


def parse_exceptions(text: str, name: str) -> list[ExceptionRule]:
    """Parse an exceptions document::

    exceptions:
      - id: GK-W-001                 # control id, globs allowed
        resource: {kind: Deployment, namespace: "team-*", name: "*"}
        justification: needs raw sockets for the CNI     # required
        owner: platform-team
        expires: 2026-12-31          # optional; expired entries stop applying
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SuppressionError(f"invalid YAML{where}", input_name=name) from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("exceptions", []), list):
        raise SuppressionError("expected a mapping with an 'exceptions' list", input_name=name)
    rules: list[ExceptionRule] = []
    for i, raw in enumerate(doc.get("exceptions") or []):
        where = f"{name}: exceptions[{i}]"
        if not isinstance(raw, dict):
            raise SuppressionError("an exception must be a mapping", input_name=where)
        cid = _field(raw, "id", where)
        if not cid:
            raise SuppressionError("'id' is required", input_name=where)
        justification = _field(raw, "justification", where)
        if not justification:
            raise SuppressionError(f"exception for {cid} has no justification", input_name=where)
        resource = raw.get("resource") or {}
        if not isinstance(resource, dict):
            raise SuppressionError("'resource' must be a mapping of kind/namespace/name", input_name=where)
        expires_raw = raw.get("expires")
        expires: dt.date | None
        if expires_raw is None:
            expires = None
        elif isinstance(expires_raw, dt.datetime):
            expires = expires_raw.date()
        elif isinstance(expires_raw, dt.date):
            expires = expires_raw
        else:
            try:
                expires = dt.date.fromisoformat(str(expires_raw).strip())
            except ValueError:
                raise SuppressionError(
                    f"'expires' must be a date (YYYY-MM-DD), got {expires_raw!r}", input_name=where
                ) from None
        rules.append(
            ExceptionRule(
                id=cid,
                justification=justification,
                kind=_field(resource, "kind", where, "*") or "*",
                namespace=_field(resource, "namespace", where, "*") or "*",
                name=_field(resource, "name", where, "*") or "*",
                owner=_field(raw, "owner", where),
                expires=expires,
            )
        )
    return rules


def load_exceptions(path: Path) -> list[ExceptionRule]:
    return parse_exceptions(_read_text(path), str(path))


# --- baseline ---------------------------------------------------------------------------------------


def fingerprint(result: ControlResult) -> str:
    """A stable id for a failure: control id, subject reference, file and object paths (no lines)."""
    file = result.location.file or result.subject.location.file
    parts = (result.control.id, result.subject.ref, file, *result.paths)
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def baseline_document(results: Iterable[ControlResult]) -> dict[str, Any]:
    entries: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.verdict is not Verdict.FAIL:
            continue
        fp = fingerprint(r)
        entries[fp] = {
            "fingerprint": fp,
            "control": r.control.id,
            "subject": r.subject.ref,
            "file": r.location.file or r.subject.location.file,
            "paths": list(r.paths),
        }
    return {"version": BASELINE_VERSION, "entries": [entries[k] for k in sorted(entries)]}


def write_baseline(results: Iterable[ControlResult], path: Path) -> int:
    """Write the fingerprints of the current failures to ``path``; return how many."""
    doc = baseline_document(results)
    try:
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot write baseline: {err.strerror}", input_name=str(path)) from None
    return len(doc["entries"])


def parse_baseline(text: str, name: str) -> set[str]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise SuppressionError(f"invalid JSON at line {err.lineno}", input_name=name) from None
    if not isinstance(doc, dict) or doc.get("version") != BASELINE_VERSION or not isinstance(doc.get("entries"), list):
        raise SuppressionError(f"not a version {BASELINE_VERSION} baseline", input_name=name)
    out: set[str] = set()
    for i, entry in enumerate(doc["entries"]):
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fp, str) or not re.fullmatch(r"[0-9a-f]{32}", fp):
            raise SuppressionError(f"entries[{i}]: missing or invalid fingerprint", input_name=name)
        out.add(fp)
    return out


def load_baseline(path: Path) -> set[str]:
    return parse_baseline(_read_text(path), str(path))


# --- annotations and comments -------------------------------------------------------------------


def _ids(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def checkov_index(controls: Iterable[Control]) -> dict[str, set[str]]:
    """checkov id -> our control ids with the same intent."""
    out: dict[str, set[str]] = {}
    for ctl in controls:
        for ck in ctl.references.get("checkov", ()):
            out.setdefault(ck.upper(), set()).add(ctl.id)
    return out


def _annotations(meta: dict[str, Any]) -> dict[str, str]:
    raw = meta.get("annotations")
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, (str, int, float))}


def _container_name(obj: K8sObject, paths: Sequence[str]) -> str | None:
    for path in paths:
        m = _CONTAINER_PATH.match(path)
        if not m:
            continue
        for prefix, _meta, spec in pod_templates(obj):
            if prefix == m.group(1):
                items = spec.get(m.group(2))
                idx = int(m.group(3))
                if isinstance(items, list) and idx < len(items) and isinstance(items[idx], dict):
                    name = items[idx].get("name")
                    return name if isinstance(name, str) else None
    return None


def annotation_reason(obj: K8sObject, result: ControlResult, checkov: dict[str, set[str]]) -> str | None:
    """Why the object's (or its pod template's) annotations suppress ``result``, or ``None``."""
    cid = result.control.id
    metas = [obj.metadata] + [meta for _prefix, meta, _spec in pod_templates(obj)]
    container = _container_name(obj, result.paths)
    for meta in metas:
        ann = _annotations(meta)
        if cid in _ids(ann.get(IGNORE, "")) or "*" in _ids(ann.get(IGNORE, "")):
            return ann.get(IGNORE_REASON, "").strip() or f"annotation {IGNORE}"
        if container is not None and cid in _ids(ann.get(CONTAINER_PREFIX + container, "")):
            return ann.get(IGNORE_REASON, "").strip() or f"annotation {CONTAINER_PREFIX}{container}"
        for key, value in ann.items():
            if _CHECKOV_KEY.match(key):
                ck, _, reason = value.partition("=")
                if cid in checkov.get(ck.strip().upper(), set()):
                    return reason.strip() or f"annotation {key}: {ck.strip()}"
    return None


class _Lines:
    """Source lines of the files results point at, read once."""

    def __init__(self) -> None:
        self._cache: dict[str, list[str]] = {}

    def get(self, file: str) -> list[str]:
        if file not in self._cache:
            lines: list[str] = []
            if file and file != "-":
                try:
                    with open(file, "rb") as f:
                        lines = f.read(_MAX_FILE_BYTES).decode("utf-8", "replace").splitlines()
                except OSError:
                    lines = []
            self._cache[file] = lines
        return self._cache[file]


def comment_reason(lines: list[str], line: int, cid: str) -> str | None:
    """The reason of a ``# garrison:ignore=ID`` comment on ``line`` (1-based) or the line before."""
    for n in (line, line - 1):
        if 1 <= n <= len(lines):
            m = _INLINE.search(lines[n - 1])
            if m and (cid in _ids(m.group(1)) or "*" in _ids(m.group(1))):
                return m.group(2).strip() or "inline garrison:ignore comment"
    return None


# --- applying ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    results: list[ControlResult]
    warnings: list[str] = field(default_factory=list)
    suppressed: int = 0
    baseline_stale: int = 0  # baseline entries that no longer occur


def _skip(result: ControlResult, source: str, reason: str) -> ControlResult:
    details = dict(result.details)
    details["suppression"] = reason
    details["suppressed_by"] = source
    message = f"suppressed ({source}): {reason}"
    return replace(result, verdict=Verdict.SKIP, message=message, details=details)


def _object_index(objects: Iterable[K8sObject]) -> dict[tuple[str, int, str, str], K8sObject]:
    return {(o.location.file, o.location.line, o.kind, o.name): o for o in objects if o.is_mapping}


def apply(
    results: Iterable[ControlResult],
    *,
    objects: Iterable[K8sObject] = (),
    exceptions: Sequence[ExceptionRule] = (),
    baseline: set[str] | None = None,
    controls: Iterable[Control] | None = None,
    today: dt.date | None = None,
    read_sources: bool = True,
) -> Outcome:
    """Apply every suppression source to the FAIL results; other verdicts are kept as they are."""
    day = today or dt.date.today()
    index = _object_index(objects)
    if controls is None:
        from garrison.posture.frameworks import catalog

        controls = catalog().values()
    checkov = checkov_index(controls)
    lines = _Lines()
    warnings: list[str] = []
    active: list[ExceptionRule] = []
    for rule in exceptions:
        if rule.expired(day):
            assert rule.expires is not None
            warnings.append(
                f"exception {rule.describe()} expired on {rule.expires.isoformat()} and no longer applies"
                + (f" (owner: {rule.owner})" if rule.owner else "")
            )
        else:
            active.append(rule)
    seen_baseline: set[str] = set()
    out: list[ControlResult] = []
    suppressed = 0
    for r in results:
        if r.verdict is not Verdict.FAIL:
            out.append(r)
            continue
        new = _suppress_one(r, index, checkov, lines if read_sources else None, active, baseline, seen_baseline)
        suppressed += new is not r
        out.append(new)
    stale = len(baseline - seen_baseline) if baseline is not None else 0
    if stale:
        warnings.append(f"{stale} baseline entr{'y' if stale == 1 else 'ies'} no longer occur")
    return Outcome(out, warnings, suppressed, stale)


def _suppress_one(
    r: ControlResult,
    index: dict[tuple[str, int, str, str], K8sObject],
    checkov: dict[str, set[str]],
    lines: _Lines | None,
    active: Sequence[ExceptionRule],
    baseline: set[str] | None,
    seen_baseline: set[str],
) -> ControlResult:
    fp = fingerprint(r) if baseline is not None else ""
    if baseline is not None and fp in baseline:
        seen_baseline.add(fp)
    loc = r.subject.location
    obj = index.get((loc.file, loc.line, r.subject.kind, r.subject.name))
    if obj is not None:
        reason = annotation_reason(obj, r, checkov)
        if reason is not None:
            return _skip(r, "annotation", reason)
    if lines is not None and r.location.line:
        reason = comment_reason(lines.get(r.location.file), r.location.line, r.control.id)
        if reason is not None:
            return _skip(r, "comment", reason)
    for rule in active:
        if rule.matches(r):
            who = f" (owner: {rule.owner})" if rule.owner else ""
            return _skip(r, "exception", rule.justification + who)
    if baseline is not None and fp in baseline:
        return _skip(r, "baseline", "known failure in the baseline")
    return r
