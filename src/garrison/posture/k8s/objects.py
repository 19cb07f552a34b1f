"""The Kubernetes object model used by every Kubernetes control family.

A :class:`K8sObject` is one manifest object with where it came from (file, first and last
line) and a lazily built map from object paths such as
``spec.containers[0].securityContext.privileged`` to 1-based lines, computed from the PyYAML
node tree the loader composed. :func:`pod_specs` finds the pod specs an object runs: the
object's own spec for a Pod and the pod template of every built-in workload kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from garrison.posture.model import Location, Subject

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

#: workload kind -> path (keys) to its pod template
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}


def key_segment(key: object) -> str:
    """The path segment for a mapping key: ``name`` when plain, else ``["a.b/c"]``."""
    text = str(key)
    if _PLAIN_KEY.match(text):
        return text
    return '["' + text.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def join_path(prefix: str, key: object) -> str:
    seg = key_segment(key)
    if not prefix:
        return seg
    return f"{prefix}{seg}" if seg.startswith("[") else f"{prefix}.{seg}"


def _parent(path: str) -> str:
    """``a.b[0].c`` -> ``a.b[0]`` -> ``a.b`` -> ``a`` -> ``""``."""
    if path.endswith("]"):
        depth = 0
        for i in range(len(path) - 1, -1, -1):
            ch = path[i]
            if ch == "]":
                depth += 1
            elif ch == "[":
                depth -= 1
                if depth == 0:
                    return path[:i]
        return ""
    dot = path.rfind(".")
    # a dot inside a quoted ["..."] segment is skipped because such segments end with "]"
    return path[:dot] if dot >= 0 else ""


def build_line_map(node: yaml.Node | None) -> dict[str, int]:
    """Map every object path under ``node`` to its 1-based line (values' lines; for mappings and
    sequences the line of their first token). Aliased nodes are walked once per path."""
    lines: dict[str, int] = {}
    if node is None:
        return lines
    stack: list[tuple[yaml.Node, str]] = [(node, "")]
    while stack:
        cur, path = stack.pop()
        lines.setdefault(path, cur.start_mark.line + 1)
        if isinstance(cur, yaml.MappingNode):
            for key_node, value_node in cur.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                child = join_path(path, key_node.value)
                # the key's line is where the field is written, even for block values
                lines.setdefault(child, key_node.start_mark.line + 1)
                stack.append((value_node, child))
        elif isinstance(cur, yaml.SequenceNode):
            for i, item in enumerate(cur.value):
                stack.append((item, f"{path}[{i}]"))
    return lines


@dataclass(slots=True, eq=False)
class K8sObject:
    """One Kubernetes object from a manifest.

    ``doc`` is the object as a dict (empty for documents that are not mappings; ``raw`` then
    holds the value). ``location`` spans the object's lines in ``location.file``.
    """

    doc: dict[str, Any]
    location: Location
    node: yaml.Node | None = field(default=None, repr=False)
    raw: Any = field(default=None, repr=False)
    _lines: dict[str, int] | None = field(default=None, repr=False)
    #: memo of derived views (pod specs, containers, subject) that many controls ask for; the
    #: document is never modified after loading, so they stay valid
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def api_version(self) -> str:
        value = self.doc.get("apiVersion")
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        value = self.doc.get("kind")
        return value if isinstance(value, str) else ""

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.doc.get("metadata")
        return value if isinstance(value, dict) else {}

    @property
    def name(self) -> str:
        value = self.metadata.get("name")
        if isinstance(value, str):
            return value
        generate = self.metadata.get("generateName")
        return generate if isinstance(generate, str) else ""

    @property
    def namespace(self) -> str:
        value = self.metadata.get("namespace")
        return value if isinstance(value, str) else ""

    @property
    def is_mapping(self) -> bool:
        return self.raw is None

    def line_of(self, path: str) -> int:
        """The line of ``path`` (or of its nearest written ancestor); the object's first line
        when nothing on the path was written."""
        if self._lines is None:
            self._lines = build_line_map(self.node)
        probe = path
        while probe:
            line = self._lines.get(probe)
            if line is not None:
                return line
            probe = _parent(probe)
        return self._lines.get("", self.location.line)

    def location_of(self, path: str) -> Location:
        line = self.line_of(path)
        return Location(file=self.location.file, line=line, end_line=line)

    def subject(self) -> Subject:
        cached = self.cache.get("subject")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        self.cache["subject"] = subject = Subject(
            kind=self.kind or "<unknown>",
            name=self.name,
            namespace=self.namespace,
            api_version=self.api_version,
            location=self.location,
        )
        return subject


def _dig(doc: Any, keys: tuple[str, ...]) -> Any:
    cur = doc
    for key in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def pod_specs(obj: K8sObject) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path prefix, pod spec)`` for every pod spec ``obj`` runs (see :func:`pod_templates`)."""
    for prefix, _meta, spec in pod_templates(obj):
        yield prefix, spec


def pod_templates(obj: K8sObject) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Yield ``(path prefix, pod metadata, pod spec)`` for every pod spec ``obj`` runs.

    The prefix is the path of the spec (``spec`` for a Pod, ``spec.template.spec`` for a
    Deployment, ``spec.jobTemplate.spec.template.spec`` for a CronJob); metadata is the pod's
    (or template's) metadata, ``{}`` when absent. Objects of other kinds yield nothing.
    """
    kind = obj.kind
    if kind == "Pod":
        spec = obj.doc.get("spec")
        if isinstance(spec, dict):
            yield "spec", obj.metadata, spec
        return
    keys = TEMPLATE_PATHS.get(kind)
    if keys is None:
        return
    template = _dig(obj.doc, keys)
    if not isinstance(template, dict):
        return
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return
    meta = template.get("metadata")
    yield ".".join((*keys, "spec")), meta if isinstance(meta, dict) else {}, spec
