"""Load Kubernetes manifests (YAML or JSON) from files, directories, stdin, Kustomize
directories and Helm charts, keeping line numbers.

Documents are composed with PyYAML (the C composer when libyaml is available) so every object
keeps its node tree; :class:`~garrison.posture.k8s.objects.K8sObject` turns it into a map from
object paths to lines on demand. Before a document is turned into Python values it is checked
for hostile shapes: alias expansion (billion laughs: the expanded node count is computed on the
node graph without expanding it), recursive aliases, nesting depth, and the file size is bounded
before reading. Duplicate mapping keys are reported as warnings (the last value wins, as with
``kubectl``). ``kind: List`` and other ``*List`` objects are expanded into their items.

Kustomize directories and Helm charts are rendered by the real tools (``kubectl kustomize`` or
``kustomize build``, and ``helm template``); when the tool is missing the error says so.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import ConfigError, InputError, NotFoundError
from garrison.posture.k8s.objects import K8sObject, build_line_map
from garrison.posture.model import Location

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
STDIN = "-"
DEFAULT_MAX_BYTES = 64 * 1024**2


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """Bounds against hostile manifests."""

    max_bytes: int = DEFAULT_MAX_BYTES  # one file (or one rendered output)
    max_depth: int = 64  # nesting of mappings/sequences
    max_nodes: int = 2_000_000  # nodes of one document after alias expansion
    max_alias_ratio: int = 10  # expanded nodes / written nodes, once above ``alias_floor``
    alias_floor: int = 10_000

    @classmethod
    def from_env(cls) -> LoadLimits:
        return cls(max_bytes=_env_int("GARRISON_MAX_MANIFEST_BYTES", DEFAULT_MAX_BYTES))


class ManifestError(InputError):
    """A manifest that cannot be loaded: ``file:line: message``."""

    def __init__(self, message: str, *, file: str, line: int = 0) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")
        self.input_name = file
        self.line = line


class _Loader(_BaseLoader):
    """Safe loader that keeps timestamps as strings (Kubernetes has no timestamp type)."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


@dataclass(slots=True)
class LoadResult:
    objects: list[K8sObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.objects.extend(other.objects)
        self.warnings.extend(other.warnings)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"


class _Builder:
    """Turn one composed document into Python values in a single pass that also rejects
    recursive aliases, deep nesting and alias bombs (the expanded node count is summed over the
    node graph, with shared nodes counted once per use) and collects duplicate keys.

    Plain strings, booleans, nulls, mappings and sequences are built directly (the common case,
    and much faster than PyYAML's generic constructor); every other scalar tag (int, float,
    timestamps, binary, ...) and merge keys go through the safe constructor.
    """

    def __init__(self, loader: _Loader, file: str, limits: LoadLimits) -> None:
        self.loader = loader
        self.file = file
        self.limits = limits
        self.values: dict[int, tuple[Any, int]] = {}
        self.on_path: set[int] = set()
        self.written = 0
        self.warnings: list[str] = []

    def _fail(self, message: str, node: yaml.Node) -> ManifestError:
        return ManifestError(message, file=self.file, line=node.start_mark.line + 1)

    def build(self, node: yaml.Node) -> Any:
        value, expanded = self._node(node, 1)
        lim = self.limits
        if expanded > lim.alias_floor and expanded > self.written * lim.max_alias_ratio:
            raise self._fail(
                f"aliases expand {self.written} written nodes to {expanded} "
                f"(more than {lim.max_alias_ratio}x; alias bomb?)",
                node,
            )
        return value

    def _node(self, node: yaml.Node, depth: int) -> tuple[Any, int]:
        ident = id(node)
        cached = self.values.get(ident)
        if cached is not None:
            return cached
        if ident in self.on_path:
            raise self._fail("recursive YAML alias", node)
        if depth > self.limits.max_depth:
            raise self._fail(f"nesting deeper than {self.limits.max_depth} levels", node)
        self.written += 1
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag == _STR:
                result: tuple[Any, int] = (node.value, 1)
            elif tag == _NULL:
                result = (None, 1)
            elif tag == _BOOL:
                result = (node.value.lower() in ("yes", "true", "on", "y"), 1)
            else:
                result = (self.loader.construct_object(node, deep=True), 1)
        elif isinstance(node, yaml.SequenceNode):
            self.on_path.add(ident)
            items = []
            size = 1
            for item in node.value:
                v, n = self._node(item, depth + 1)
                items.append(v)
                size += n
            self.on_path.discard(ident)
            result = (items if tag == _SEQ else self.loader.construct_object(node, deep=True), size)
        elif isinstance(node, yaml.MappingNode):
            self.on_path.add(ident)
            mapping: dict[Any, Any] = {}
            size = 1
            merge = False
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    merge = True
                k, kn = self._node(key_node, depth + 1)
                v, vn = self._node(value_node, depth + 1)
                size += kn + vn
                try:
                    if k in mapping:
                        self.warnings.append(
                            f"{self.file}:{key_node.start_mark.line + 1}: duplicate key {k!r} (the last value wins)"
                        )
                    mapping[k] = v
                except TypeError:
                    raise self._fail("unhashable mapping key", key_node) from None
            self.on_path.discard(ident)
            if merge or tag != _MAP:
                mapping = self.loader.construct_object(node, deep=True)
            result = (mapping, size)
        else:  # pragma: no cover - the composer makes only these three kinds
            raise self._fail("unexpected YAML node", node)
        if result[1] > self.limits.max_nodes:
            raise self._fail(f"document expands to more than {self.limits.max_nodes} nodes (alias bomb?)", node)
        self.values[ident] = result
        return result


def _mark_line(err: yaml.YAMLError) -> int:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    return int(mark.line) + 1 if mark is not None else 0


def _one_line(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    text = " ".join(str(p) for p in (context, problem) if p) or str(err).splitlines()[0]
    return f"invalid YAML: {text}"


def _end_line(node: yaml.Node) -> int:
    end = node.end_mark
    # an end mark at column 0 is the start of the next line
    return end.line if end.column == 0 and end.line > node.start_mark.line else end.line + 1


def _objects_from(value: Any, node: yaml.Node, file: str, result: LoadResult) -> None:
    loc = Location(file=file, line=node.start_mark.line + 1, end_line=_end_line(node))
    if not isinstance(value, dict):
        result.objects.append(K8sObject(doc={}, location=loc, raw=value, _lines=build_line_map(node)))
        result.warnings.append(f"{file}:{loc.line}: document is a {type(value).__name__}, not a Kubernetes object")
        return
    kind = value.get("kind")
    items = value.get("items")
    if (
        isinstance(kind, str)
        and kind.endswith("List")
        and isinstance(items, list)
        and isinstance(node, yaml.MappingNode)
    ):
        items_node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "items"), None)
        item_nodes = items_node.value if isinstance(items_node, yaml.SequenceNode) else []
        for i, item in enumerate(items):
            item_node = item_nodes[i] if i < len(item_nodes) else node
            _objects_from(item, item_node, file, result)
        return
    # the line map is built now and the node tree dropped: the tree (with two marks per node)
    # took three times the memory of the documents themselves on large manifest sets
    result.objects.append(K8sObject(doc=value, location=loc, _lines=build_line_map(node)))


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ManifestError(f"not UTF-8 text (byte {err.start})", file=file, line=line) from None


def load_text(data: bytes | str, file: str, limits: LoadLimits | None = None) -> LoadResult:
    """Load every document in ``data`` (YAML or JSON) named ``file`` in messages."""
    limits = limits or LoadLimits.from_env()
    if len(data) > limits.max_bytes:
        raise ManifestError(f"larger than {limits.max_bytes} bytes (raise GARRISON_MAX_MANIFEST_BYTES)", file=file)
    text = _decode(data, file) if isinstance(data, bytes) else data
    result = LoadResult()
    loader = _Loader(text)
    # the node trees are kept (for line numbers) and hold no cycles: pausing the cyclic
    # collector while they are built avoids repeated full collections (4x faster on big files)
    collecting = gc.isenabled()
    gc.disable()
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            builder = _Builder(loader, file, limits)
            try:
                value = builder.build(node)
            except RecursionError:
                raise ManifestError("nesting too deep", file=file, line=node.start_mark.line + 1) from None
            result.warnings.extend(builder.warnings)
            if value is None:
                continue
            _objects_from(value, node, file, result)
    except yaml.YAMLError as err:
        raise ManifestError(_one_line(err), file=file, line=_mark_line(err)) from None
    except (ValueError, TypeError, OverflowError) as err:
        # the constructor can fail on scalars it resolved (e.g. unhashable or odd keys)
        raise ManifestError(f"invalid YAML: {err}", file=file) from None
    finally:
        loader.dispose()
        if collecting:
            gc.enable()
    return result


def load_file(path: Path, limits: LoadLimits | None = None) -> LoadResult:
    limits = limits or LoadLimits.from_env()
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise NotFoundError(f"cannot read: {err.strerror}", input_name=name) from None
    if size > limits.max_bytes:
        raise ManifestError(f"larger than {limits.max_bytes} bytes (raise GARRISON_MAX_MANIFEST_BYTES)", file=name)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise NotFoundError(f"cannot read: {err.strerror}", input_name=name) from None
    return load_text(data, name, limits)


def _run_renderer(argv: Sequence[str], source: str, limits: LoadLimits) -> LoadResult:
    try:
        proc = subprocess.run(argv, capture_output=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"{argv[0]} failed: {err}", input_name=source) from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise InputError(f"{' '.join(argv[:2])} failed: {detail}", input_name=source)
    return load_text(proc.stdout, source, limits)


def render_kustomize(directory: Path, limits: LoadLimits) -> LoadResult:
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    name = f"{directory} (kustomize)"
    if kubectl:
        return _run_renderer([kubectl, "kustomize", str(directory)], name, limits)
    if kustomize:
        return _run_renderer([kustomize, "build", str(directory)], name, limits)
    raise ConfigError(
        "is a Kustomize directory; install kubectl (or kustomize) to render it", input_name=str(directory)
    )


def render_helm(chart: Path, limits: LoadLimits) -> LoadResult:
    helm = shutil.which("helm")
    if not helm:
        raise ConfigError("is a Helm chart; install helm to render it", input_name=str(chart))
    return _run_renderer([helm, "template", "garrison", str(chart)], f"{chart} (helm)", limits)


def _is_kustomize(directory: Path) -> bool:
    return any((directory / n).is_file() for n in KUSTOMIZATION_FILES)


def _is_helm(directory: Path) -> bool:
    return (directory / "Chart.yaml").is_file()


def _walk(directory: Path, limits: LoadLimits, result: LoadResult) -> None:
    try:
        entries = sorted(directory.iterdir())
    except OSError as err:
        raise NotFoundError(f"cannot list: {err.strerror}", input_name=str(directory)) from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if _is_helm(entry):
                if shutil.which("helm"):
                    result.extend(render_helm(entry, limits))
                else:
                    result.warnings.append(f"{entry}: Helm chart skipped (helm is not installed)")
                continue
            _walk(entry, limits, result)
        elif entry.is_file() and entry.suffix.lower() in MANIFEST_SUFFIXES:
            result.extend(load_file(entry, limits))


def load_paths(paths: Iterable[str | Path], limits: LoadLimits | None = None) -> LoadResult:
    """Load manifests from files, directories (recursively), Kustomize directories, Helm charts
    and ``-`` (stdin), in the order given."""
    limits = limits or LoadLimits.from_env()
    result = LoadResult()
    for raw in paths:
        if str(raw) == STDIN:
            data = sys.stdin.buffer.read(limits.max_bytes + 1)
            result.extend(load_text(data, "<stdin>", limits))
            continue
        path = Path(raw)
        if path.is_dir():
            if _is_kustomize(path):
                result.extend(render_kustomize(path, limits))
            elif _is_helm(path):
                result.extend(render_helm(path, limits))
            else:
                _walk(path, limits, result)
        elif path.is_file():
            result.extend(load_file(path, limits))
        else:
            raise NotFoundError("no such file or directory", input_name=str(path))
    return result
