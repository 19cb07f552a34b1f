"""The scan pipeline: source -> layers -> catalogers/secrets -> merge -> match -> findings.

Engines are called here and nowhere else; the CLI, tests and (later) the admission webhook call
:func:`scan_image`, :func:`scan_filesystem` and :func:`scan_sbom_file`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from garrison import __version__
from garrison.core.errors import NotFoundError
from garrison.model import (
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    OperatingSystem,
    Package,
    ScanResult,
    SecretMatch,
    Severity,
)
from garrison.model.purl import assign_purls
from garrison.scan.analyze import LayerAnalysis, MergedView, SecretScannerLike, analyze_entries, merge_layers
from garrison.scan.cache import LayerCache

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # (description, advance bytes, total bytes or None)

ALL_SCANNERS = frozenset({"vuln", "secret"})


@dataclass(slots=True)
class ScanOptions:
    scanners: frozenset[str] = ALL_SCANNERS
    db_path: Path | None = None
    platform: str | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    catalogers: list[str] | None = None
    use_cache: bool = True
    cache_dir: Path | None = None
    secret_config: Path | None = None
    progress: Progress | None = None
    #: called once the input is known to exist and be readable, before the long analysis
    preflight: Callable[[], None] | None = None
    warnings: list[str] = field(default_factory=list)


def _secret_scanner(opts: ScanOptions) -> SecretScannerLike | None:
    if "secret" not in opts.scanners:
        return None
    from garrison.secrets import SecretScanner

    return SecretScanner.from_config(opts.secret_config) if opts.secret_config else SecretScanner()


def _fingerprint(catalogers_fp: str, secrets: SecretScannerLike | None) -> str:
    secret_fp = getattr(secrets, "fingerprint", "on") if secrets is not None else "off"
    return hashlib.sha256(f"{catalogers_fp}|{secret_fp}".encode()).hexdigest()[:24]


def collect_image(ref: str, opts: ScanOptions) -> tuple[Artifact, MergedView]:
    """Read an image from any source and return its artifact and merged package view."""
    from garrison.image.directory import iter_directory
    from garrison.image.layers import iter_layer
    from garrison.image.open import open_image
    from garrison.sbom.registry import default_registry

    registry = default_registry()
    catalogers = registry.select("image", opts.catalogers)
    secrets = _secret_scanner(opts)
    fingerprint = _fingerprint(registry.fingerprint(catalogers), secrets)
    cache = LayerCache(opts.cache_dir) if opts.use_cache else None
    analyses: list[LayerAnalysis] = []
    with open_image(
        ref, platform=opts.platform, insecure=opts.insecure, username=opts.username, password=opts.password
    ) as source:
        artifact = source.artifact()
        if opts.preflight is not None:
            opts.preflight()
        if artifact.kind == ArtifactKind.ROOTFS:
            root = Path(ref.split(":", 1)[1] if ref.startswith(("rootfs:", "dir:")) else ref)
            analyses.append(analyze_entries(iter_directory(root), catalogers, mode="image", secrets=secrets))
        else:
            total = sum(layer.size for layer in artifact.layers) or None
            for layer in artifact.layers:
                cached = cache.get(layer.diff_id, fingerprint) if cache else None
                if cached is not None:
                    logger.debug("layer %s from cache", layer.diff_id)
                    analyses.append(cached)
                    if opts.progress:
                        opts.progress("layers", layer.size, total)
                    continue
                with source.open_layer(layer) as blob:
                    entries = iter_layer(
                        blob, name=f"{artifact.name} layer {layer.digest}", media_type=layer.media_type
                    )
                    analysis = analyze_entries(
                        entries, catalogers, diff_id=layer.diff_id, mode="image", secrets=secrets
                    )
                    blob.read()  # drain so the digest is verified even when the tar ended early
                if cache is not None:
                    cache.put(analysis, fingerprint)
                analyses.append(analysis)
                if opts.progress:
                    opts.progress("layers", layer.size, total)
    if cache is not None:
        cache.close()
    return artifact, merge_layers(analyses)


def collect_filesystem(path: Path, opts: ScanOptions) -> tuple[Artifact, MergedView]:
    from garrison.image.directory import iter_directory
    from garrison.sbom.registry import default_registry

    if not path.exists():
        raise NotFoundError("no such file or directory", input_name=str(path))
    registry = default_registry()
    catalogers = registry.select("fs", opts.catalogers)
    secrets = _secret_scanner(opts)
    root = path if path.is_dir() else path.parent
    entries = iter_directory(root)
    if path.is_file():
        wanted = path.name
        entries = (e for e in entries if e.info.path == wanted)
    analysis = analyze_entries(entries, catalogers, mode="fs", secrets=secrets)
    artifact = Artifact(name=str(path), kind=ArtifactKind.FILESYSTEM)
    newest = 0.0
    for rel in analysis.files:
        try:
            newest = max(newest, (root / rel).stat().st_mtime)
        except OSError:
            pass
    if newest:
        artifact.created = _rfc3339(newest)
    return artifact, merge_layers([analysis])


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_timestamp(artifact: Artifact) -> str:
    """Deterministic for equal input: SOURCE_DATE_EPOCH, else the artifact's own date."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde and sde.isdigit():
        return _rfc3339(float(sde))
    if artifact.created:
        return artifact.created
    return _rfc3339(0)


_INSTALLED_GROUPS = {"pypi": "python packages", "npm": "node.js packages", "gem": "ruby gems"}


def target_of(pkg: Package, os_: OperatingSystem | None) -> str:
    """The group a package's findings are listed under (OS packages, then one per file)."""
    if pkg.type in ("deb", "apk", "rpm"):
        return f"{os_.family} {os_.version} ({pkg.type})" if os_ else f"os packages ({pkg.type})"
    installed = pkg.path.endswith(("METADATA", "PKG-INFO", "package.json", ".gemspec")) or ".egg-info" in pkg.path
    if pkg.type in _INSTALLED_GROUPS and installed:
        return _INSTALLED_GROUPS[pkg.type]
    return pkg.path or pkg.type


def build_result(artifact: Artifact, view: MergedView, opts: ScanOptions, *, match: bool) -> ScanResult:
    assign_purls(view.packages, view.os)
    result = ScanResult(
        artifact=artifact,
        packages=sorted(view.packages, key=lambda p: (p.type, p.name, p.version, p.path)),
        os=view.os,
        created=result_timestamp(artifact),
        tool_version=__version__,
        scanners=tuple(sorted(opts.scanners if match else ())),
        warnings=[*view.warnings, *opts.warnings],
    )
    if match and "vuln" in opts.scanners:
        _match_vulnerabilities(result, opts)
    if match and "secret" in opts.scanners:
        result.findings.extend(_secret_finding(s) for s in view.secrets)
    result.findings.sort(key=lambda f: (f.target, -int(f.severity), f.id, f.vuln.package.name if f.vuln else ""))
    return result


def _match_vulnerabilities(result: ScanResult, opts: ScanOptions) -> None:
    from garrison.vulndb.db import VulnDB, default_db_path
    from garrison.vulndb.matcher import Matcher

    db_path = opts.db_path or default_db_path()
    with VulnDB.open(db_path, readonly=True) as db:
        status = db.status()
        # the age changes from run to run; reports stay byte-stable for equal input
        result.db = {k: v for k, v in status.to_dict().items() if k not in ("age", "age_seconds")}
        if db.is_stale():
            result.warnings.append(f"vulnerability database {db_path} is older than a week; run 'garrison db update'")
        matches = Matcher(db).match(result.packages, result.os)
    for m in matches:
        vuln = m.vulnerability
        title = vuln.summary or (vuln.details.strip().splitlines()[0][:120] if vuln.details.strip() else "")
        result.findings.append(
            Finding(
                id=vuln.id,
                kind=FindingKind.VULNERABILITY,
                severity=vuln.severity,
                title=title,
                target=target_of(m.package, result.os),
                vuln=m,
            )
        )


def _secret_finding(s: SecretMatch) -> Finding:
    from garrison.secrets import severity_of

    sev: Severity = severity_of(s.rule_id)
    return Finding(id=s.rule_id, kind=FindingKind.SECRET, severity=sev, title=s.title, target=s.path, secret=s)


def _check_db(opts: ScanOptions) -> None:
    """Fail before the (long) analysis when the vulnerability database is missing or unreadable."""
    if "vuln" not in opts.scanners:
        return
    from garrison.vulndb.db import VulnDB, default_db_path

    with VulnDB.open(opts.db_path or default_db_path(), readonly=True):
        pass


def scan_image(ref: str, opts: ScanOptions) -> ScanResult:
    opts.preflight = lambda: _check_db(opts)
    artifact, view = collect_image(ref, opts)
    return build_result(artifact, view, opts, match=True)


def scan_filesystem(path: Path, opts: ScanOptions) -> ScanResult:
    if not path.exists():
        raise NotFoundError("no such file or directory", input_name=str(path))
    _check_db(opts)
    artifact, view = collect_filesystem(path, opts)
    return build_result(artifact, view, opts, match=True)


def sbom_image(ref: str, opts: ScanOptions) -> ScanResult:
    opts.scanners = frozenset()
    artifact, view = collect_image(ref, opts)
    return build_result(artifact, view, opts, match=False)


def sbom_filesystem(path: Path, opts: ScanOptions) -> ScanResult:
    opts.scanners = frozenset()
    artifact, view = collect_filesystem(path, opts)
    return build_result(artifact, view, opts, match=False)


def scan_sbom_file(path: Path, opts: ScanOptions) -> ScanResult:
    from garrison.sbom.formats import decode_sbom

    artifact, packages, os_ = decode_sbom(path)
    view = MergedView(packages=packages, os=os_, secrets=[], warnings=[])
    opts.scanners = opts.scanners & {"vuln"}
    return build_result(artifact, view, opts, match=True)
