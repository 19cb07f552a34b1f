"""AdmissionReview ``admission.k8s.io/v1``: parse and validate requests, build responses.

The request shape follows ``k8s.io/api/admission/v1`` (``AdmissionReview``, ``AdmissionRequest``,
``AdmissionResponse``): ``uid``, ``kind`` and ``resource`` are required, ``operation`` is one of
CREATE, UPDATE, DELETE and CONNECT, ``object``/``oldObject`` are raw objects (``null`` where the
operation has none), ``userInfo`` carries username, uid, groups and extra, ``dryRun`` marks a
request that will not be persisted. The validation is hand-written rather than done with a JSON
schema so that every rejection names the exact field in one line and the hot path stays cheap.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from garrison.core.errors import InputError

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
INPUT_NAME = "AdmissionReview"


class ReviewError(InputError):
    """A body that is not a valid ``admission.k8s.io/v1`` AdmissionReview request.

    ``uid`` is the request uid when one could be read (the answer then still carries it)."""

    def __init__(self, message: str, *, uid: str = "") -> None:
        super().__init__(message, input_name=INPUT_NAME)
        self.uid = uid


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "uid": self.uid,
            "groups": list(self.groups),
            "extra": {k: list(v) for k, v in self.extra.items()},
        }


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    uid: str
    kind: dict[str, str]  # group, version, kind
    resource: dict[str, str]  # group, version, resource
    operation: str
    namespace: str = ""
    name: str = ""
    sub_resource: str = ""
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = None
    user: UserInfo = UserInfo()
    dry_run: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def object_kind(self) -> str:
        return self.kind.get("kind", "")

    @property
    def object_name(self) -> str:
        """The request's name, else the object's name or generateName."""
        if self.name:
            return self.name
        for obj in (self.object, self.old_object):
            meta = obj.get("metadata") if obj else None
            if isinstance(meta, dict):
                for key in ("name", "generateName"):
                    value = meta.get(key)
                    if isinstance(value, str) and value:
                        return value
        return ""


def _str(doc: dict[str, Any], key: str, where: str, uid: str, *, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise ReviewError(f"{where}.{key} is required", uid=uid)
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{where}.{key} must be a string, not {type(value).__name__}", uid=uid)
    return value


def _gvx(doc: dict[str, Any], key: str, last: str, uid: str, *, required: bool) -> dict[str, str]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ReviewError(f"request.{key} is required", uid=uid)
        return {}
    if not isinstance(value, dict):
        raise ReviewError(f"request.{key} must be an object", uid=uid)
    out: dict[str, str] = {}
    for part in ("group", "version", last):
        out[part] = _str(value, part, f"request.{key}", uid)
    if required and not out[last]:
        raise ReviewError(f"request.{key}.{last} is required", uid=uid)
    return out


def _raw_object(doc: dict[str, Any], key: str, uid: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"request.{key} must be an object or null", uid=uid)
    return value


def _user(doc: dict[str, Any], uid: str) -> UserInfo:
    value = doc.get("userInfo")
    if value is None:
        return UserInfo()
    if not isinstance(value, dict):
        raise ReviewError("request.userInfo must be an object", uid=uid)
    groups = value.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError("request.userInfo.groups must be a list of strings", uid=uid)
    extra_raw = value.get("extra") or {}
    if not isinstance(extra_raw, dict):
        raise ReviewError("request.userInfo.extra must be an object", uid=uid)
    extra: dict[str, tuple[str, ...]] = {}
    for k, v in extra_raw.items():
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ReviewError(f"request.userInfo.extra.{k} must be a list of strings", uid=uid)
        extra[str(k)] = tuple(v)
    return UserInfo(
        username=_str(value, "username", "request.userInfo", uid),
        uid=_str(value, "uid", "request.userInfo", uid),
        groups=tuple(groups),
        extra=extra,
    )


def peek_uid(body: Any) -> str:
    """The request uid of a decoded body when there is a readable one, else ``""``."""
    if isinstance(body, dict):
        req = body.get("request")
        if isinstance(req, dict):
            uid = req.get("uid")
            if isinstance(uid, str):
                return uid
    return ""


def parse_review(body: bytes | str | dict[str, Any]) -> AdmissionRequest:
    """Parse an AdmissionReview body; raise :class:`ReviewError` naming the bad field."""
    if isinstance(body, dict):
        doc: Any = body
    else:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise ReviewError(f"body is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ReviewError(f"body must be a JSON object, not {type(doc).__name__}")
    uid = peek_uid(doc)
    if doc.get("kind") != KIND:
        raise ReviewError(f"kind must be {KIND}, not {doc.get('kind')!r}", uid=uid)
    if doc.get("apiVersion") != API_VERSION:
        raise ReviewError(
            f"apiVersion must be {API_VERSION} (set admissionReviewVersions: [v1]), not {doc.get('apiVersion')!r}",
            uid=uid,
        )
    req = doc.get("request")
    if not isinstance(req, dict):
        raise ReviewError("request is missing or not an object", uid=uid)
    uid = _str(req, "uid", "request", uid, required=True)
    if not uid:
        raise ReviewError("request.uid is empty")
    operation = _str(req, "operation", "request", uid, required=True)
    if operation not in OPERATIONS:
        raise ReviewError(f"request.operation must be one of {', '.join(sorted(OPERATIONS))}, not {operation!r}", uid=uid)
    dry_run = req.get("dryRun", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be a boolean", uid=uid)
    return AdmissionRequest(
        uid=uid,
        kind=_gvx(req, "kind", "kind", uid, required=True),
        resource=_gvx(req, "resource", "resource", uid, required=True),
        operation=operation,
        namespace=_str(req, "namespace", "request", uid),
        name=_str(req, "name", "request", uid),
        sub_resource=_str(req, "subResource", "request", uid),
        object=_raw_object(req, "object", uid),
        old_object=_raw_object(req, "oldObject", uid),
        user=_user(req, uid),
        dry_run=dry_run,
        raw=req,
    )


def build_response(
    uid: str,
    *,
    allowed: bool,
    message: str = "",
    code: int = 0,
    reason: str = "",
    warnings: list[str] | None = None,
    patch: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview carrying a response for ``uid``."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message or code:
        status: dict[str, Any] = {"message": message}
        if code:
            status["code"] = code
        if reason:
            status["reason"] = reason
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode("ascii")
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
