"""``garrison scan image|fs|sbom`` and ``garrison sbom``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli._output import emit as _emit
from garrison.cli._output import use_color as _use_color
from garrison.core.errors import ConfigError
from garrison.model import ScanResult, Severity

app = typer.Typer(help="Scan images, directories and SBOMs for vulnerabilities and secrets.", no_args_is_help=True)

SCAN_FORMATS = ("table", "json", "sarif", "cyclonedx", "spdx-json")
SBOM_FORMATS = ("cyclonedx", "spdx-json", "json", "table")

FormatOpt = Annotated[
    str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(SCAN_FORMATS)}.")
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", envvar="GARRISON_OUTPUT", help="Write the report to this file.", show_default=False),
]
SeverityOpt = Annotated[
    str, typer.Option("--severity", "-s", envvar="GARRISON_SEVERITY", help="Severities to report, comma-separated.")
]
FailOnOpt = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        envvar="GARRISON_FAIL_ON",
        help="Exit 1 when an unsuppressed finding is at or above this severity.",
        show_default=False,
    ),
]
GateOpt = Annotated[
    str | None,
    typer.Option(
        "--gate",
        envvar="GARRISON_GATE",
        help='Exit 1 when a finding matches this expression, e.g. "severity >= HIGH and fixable".',
        show_default=False,
    ),
]
ExitCodeOpt = Annotated[
    int | None,
    typer.Option(
        "--exit-code",
        envvar="GARRISON_EXIT_CODE",
        help="Exit code to use when the gate fails, or when any finding is reported if no gate is set.",
        show_default=False,
    ),
]
IgnoreUnfixedOpt = Annotated[
    bool,
    typer.Option(
        "--ignore-unfixed", envvar="GARRISON_IGNORE_UNFIXED", help="Hide vulnerabilities that have no fixed version."
    ),
]
IgnoreStatusOpt = Annotated[
    str,
    typer.Option(
        "--ignore-status",
        envvar="GARRISON_IGNORE_STATUS",
        help="Hide vulnerabilities with these statuses (will_not_fix, no-dsa, postponed, unimportant, end_of_life, affected, fixed).",
    ),
]
IgnoreFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--ignorefile",
        envvar="GARRISON_IGNOREFILE",
        help="Ignore file (YAML with justification/expiry, or plain .trivyignore). Default: ./.garrisonignore.yaml if present.",
        show_default=False,
    ),
]
VexOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--vex", envvar="GARRISON_VEX", help="CycloneDX VEX or OpenVEX document; repeatable.", show_default=False
    ),
]
ScannersOpt = Annotated[
    str,
    typer.Option("--scanners", envvar="GARRISON_SCANNERS", help="What to look for: vuln, secret (comma-separated)."),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", envvar="GARRISON_DB", help="Vulnerability database file.", show_default=False)
]
NoCacheOpt = Annotated[
    bool,
    typer.Option("--no-cache", envvar="GARRISON_NO_CACHE", help="Do not use or fill the per-layer analysis cache."),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform",
        envvar="GARRISON_PLATFORM",
        help="os/arch[/variant] to pick from a multi-platform image (default linux/amd64).",
        show_default=False,
    ),
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure", envvar="GARRISON_INSECURE", help="Talk plain HTTP to the registry (for a local or test registry)."
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option("--username", envvar="GARRISON_REGISTRY_USERNAME", help="Registry user name.", show_default=False),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password", envvar="GARRISON_REGISTRY_PASSWORD", help="Registry password or token.", show_default=False
    ),
]
ShowSuppressedOpt = Annotated[
    bool,
    typer.Option(
        "--show-suppressed", envvar="GARRISON_SHOW_SUPPRESSED", help="List suppressed findings in the table too."
    ),
]
CatalogersOpt = Annotated[
    str | None,
    typer.Option(
        "--catalogers",
        envvar="GARRISON_CATALOGERS",
        help="Only run these catalogers (comma-separated).",
        show_default=False,
    ),
]
SecretConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--secret-config",
        envvar="GARRISON_SECRET_CONFIG",
        help="Extra or disabled secret rules (YAML).",
        show_default=False,
    ),
]


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int | None], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def advance(desc: str, n: int, total: int | None) -> None:
            if desc not in tasks:
                tasks[desc] = bar.add_task(f"analysing {desc}", total=total)
            bar.advance(tasks[desc], n)  # type: ignore[arg-type]

        yield advance


def _scanners(text: str) -> frozenset[str]:
    chosen = frozenset(w.strip() for w in text.split(",") if w.strip())
    unknown = chosen - {"vuln", "secret"}
    if unknown:
        raise ConfigError(f"unknown scanner(s) {', '.join(sorted(unknown))}; use vuln, secret")
    return chosen


def _finish(
    result: ScanResult,
    *,
    fmt: str,
    output: Path | None,
    severity: str,
    fail_on: str | None,
    gate: str | None,
    exit_code: int | None,
    ignore_unfixed: bool,
    ignore_status: str,
    ignorefile: Path | None,
    vex: list[Path] | None,
    show_suppressed: bool,
) -> None:
    from garrison.report import render
    from garrison.scan.gate import (
        FilterOptions,
        GateExpression,
        filter_findings,
        gate_failures,
        parse_severities,
        parse_statuses,
    )
    from garrison.scan.suppress import apply_suppressions, load_ignore_file, load_vex

    if fmt not in SCAN_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(SCAN_FORMATS)}")
    fail_sev = parse_severities(fail_on) if fail_on else None
    threshold = min(fail_sev) if fail_sev else None
    expr = GateExpression(gate) if gate else None
    opts = FilterOptions(
        severities=parse_severities(severity) if severity else None,
        ignore_unfixed=ignore_unfixed,
        ignore_statuses=parse_statuses(ignore_status) if ignore_status else frozenset(),
    )
    result.findings = filter_findings(result.findings, opts)
    rules = []
    if ignorefile is None and Path(".garrisonignore.yaml").is_file():
        ignorefile = Path(".garrisonignore.yaml")
    if ignorefile is not None:
        rules.extend(load_ignore_file(ignorefile))
    for doc in vex or []:
        rules.extend(load_vex(doc))
    if rules:
        result.warnings.extend(apply_suppressions(result.findings, rules))
    for warning in result.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    _emit(render(result, fmt, color=_use_color(output), show_suppressed=show_suppressed), output)
    if threshold is not None or expr is not None:
        failed = gate_failures(result.findings, threshold, expr)
        if failed:
            sys.stderr.write(f"garrison: gate failed: {len(failed)} finding(s) at or above the gate\n")
            raise typer.Exit(exit_code if exit_code is not None else 1)
    elif exit_code is not None and any(not f.suppressed for f in result.findings):
        raise typer.Exit(exit_code)


def _options(
    *,
    scanners: str,
    db: Path | None,
    no_cache: bool,
    platform: str | None = None,
    insecure: bool = False,
    username: str | None = None,
    password: str | None = None,
    catalogers: str | None = None,
    secret_config: Path | None = None,
) -> object:
    from garrison.scan.pipeline import ScanOptions

    return ScanOptions(
        scanners=_scanners(scanners),
        db_path=db,
        use_cache=not no_cache,
        platform=platform,
        insecure=insecure,
        username=username,
        password=password,
        catalogers=[c.strip() for c in catalogers.split(",") if c.strip()] if catalogers else None,
        secret_config=secret_config,
    )


@app.command("image")
def scan_image(
    image: Annotated[
        str,
        typer.Argument(
            help="Image: a registry reference, docker-archive/oci-archive tar, OCI layout or rootfs directory (skopeo-style prefixes like docker-archive: accepted)."
        ),
    ],
    format: FormatOpt = "table",
    output: OutputOpt = None,
    severity: SeverityOpt = "",
    fail_on: FailOnOpt = None,
    gate: GateOpt = None,
    exit_code: ExitCodeOpt = None,
    ignore_unfixed: IgnoreUnfixedOpt = False,
    ignore_status: IgnoreStatusOpt = "",
    ignorefile: IgnoreFileOpt = None,
    vex: VexOpt = None,
    scanners: ScannersOpt = "vuln,secret",
    db: DbOpt = None,
    no_cache: NoCacheOpt = False,
    platform: PlatformOpt = None,
    insecure: InsecureOpt = False,
    username: UserOpt = None,
    password: PasswordOpt = None,
    show_suppressed: ShowSuppressedOpt = False,
    catalogers: CatalogersOpt = None,
    secret_config: SecretConfigOpt = None,
) -> None:
    """Scan a container image for vulnerable packages and secrets."""
    from garrison.scan.pipeline import ScanOptions
    from garrison.scan.pipeline import scan_image as run

    opts = _options(
        scanners=scanners,
        db=db,
        no_cache=no_cache,
        platform=platform,
        insecure=insecure,
        username=username,
        password=password,
        catalogers=catalogers,
        secret_config=secret_config,
    )
    assert isinstance(opts, ScanOptions)
    with _progress() as progress:
        opts.progress = progress
        result = run(image, opts)
    _finish(
        result,
        fmt=format,
        output=output,
        severity=severity,
        fail_on=fail_on,
        gate=gate,
        exit_code=exit_code,
        ignore_unfixed=ignore_unfixed,
        ignore_status=ignore_status,
        ignorefile=ignorefile,
        vex=vex,
        show_suppressed=show_suppressed,
    )


@app.command("fs")
def scan_fs(
    path: Annotated[Path, typer.Argument(help="Directory (a source tree or project) or a single lock file.")],
    format: FormatOpt = "table",
    output: OutputOpt = None,
    severity: SeverityOpt = "",
    fail_on: FailOnOpt = None,
    gate: GateOpt = None,
    exit_code: ExitCodeOpt = None,
    ignore_unfixed: IgnoreUnfixedOpt = False,
    ignore_status: IgnoreStatusOpt = "",
    ignorefile: IgnoreFileOpt = None,
    vex: VexOpt = None,
    scanners: ScannersOpt = "vuln,secret",
    db: DbOpt = None,
    show_suppressed: ShowSuppressedOpt = False,
    catalogers: CatalogersOpt = None,
    secret_config: SecretConfigOpt = None,
) -> None:
    """Scan a directory's lock files and manifests for vulnerable dependencies, and its files for secrets."""
    from garrison.scan.pipeline import ScanOptions, scan_filesystem

    opts = _options(scanners=scanners, db=db, no_cache=True, catalogers=catalogers, secret_config=secret_config)
    assert isinstance(opts, ScanOptions)
    result = scan_filesystem(path, opts)
    _finish(
        result,
        fmt=format,
        output=output,
        severity=severity,
        fail_on=fail_on,
        gate=gate,
        exit_code=exit_code,
        ignore_unfixed=ignore_unfixed,
        ignore_status=ignore_status,
        ignorefile=ignorefile,
        vex=vex,
        show_suppressed=show_suppressed,
    )


@app.command("sbom")
def scan_sbom(
    sbom_file: Annotated[Path, typer.Argument(help="CycloneDX or SPDX JSON document.")],
    format: FormatOpt = "table",
    output: OutputOpt = None,
    severity: SeverityOpt = "",
    fail_on: FailOnOpt = None,
    gate: GateOpt = None,
    exit_code: ExitCodeOpt = None,
    ignore_unfixed: IgnoreUnfixedOpt = False,
    ignore_status: IgnoreStatusOpt = "",
    ignorefile: IgnoreFileOpt = None,
    vex: VexOpt = None,
    db: DbOpt = None,
    show_suppressed: ShowSuppressedOpt = False,
) -> None:
    """Match the packages of an existing SBOM against the vulnerability database."""
    from garrison.scan.pipeline import ScanOptions, scan_sbom_file

    opts = _options(scanners="vuln", db=db, no_cache=True)
    assert isinstance(opts, ScanOptions)
    result = scan_sbom_file(sbom_file, opts)
    _finish(
        result,
        fmt=format,
        output=output,
        severity=severity,
        fail_on=fail_on,
        gate=gate,
        exit_code=exit_code,
        ignore_unfixed=ignore_unfixed,
        ignore_status=ignore_status,
        ignorefile=ignorefile,
        vex=vex,
        show_suppressed=show_suppressed,
    )


SBOM_HELP = """Produce a software bill of materials.

    garrison sbom [image|fs] TARGET --format cyclonedx|spdx-json|json|table

TARGET is an image (registry reference, archive, OCI layout or rootfs) or, with `fs` or for a
plain directory, a source tree whose lock files are read.
"""


def sbom(
    target: Annotated[list[str], typer.Argument(help="[image|fs] TARGET", show_default=False)],
    format: Annotated[
        str,
        typer.Option(
            "--format", "-f", envvar="GARRISON_SBOM_FORMAT", help=f"Output format: {', '.join(SBOM_FORMATS)}."
        ),
    ] = "cyclonedx",
    output: OutputOpt = None,
    platform: PlatformOpt = None,
    insecure: InsecureOpt = False,
    username: UserOpt = None,
    password: PasswordOpt = None,
    no_cache: NoCacheOpt = False,
    catalogers: CatalogersOpt = None,
) -> None:
    from garrison.report import render_sbom
    from garrison.scan.pipeline import ScanOptions, sbom_filesystem, sbom_image

    if format not in SBOM_FORMATS:
        raise ConfigError(f"unknown SBOM format {format!r}; choose from {', '.join(SBOM_FORMATS)}")
    if len(target) == 2 and target[0] in ("image", "fs"):
        kind, ref = target
    elif len(target) == 1:
        kind, ref = "auto", target[0]
    else:
        raise ConfigError("usage: garrison sbom [image|fs] TARGET")
    opts = ScanOptions(
        scanners=frozenset(),
        use_cache=not no_cache,
        platform=platform,
        insecure=insecure,
        username=username,
        password=password,
        catalogers=[c.strip() for c in catalogers.split(",") if c.strip()] if catalogers else None,
    )
    if kind == "auto":
        kind = "fs" if _looks_like_source_tree(Path(ref)) else "image"
    with _progress() as progress:
        opts.progress = progress
        result = sbom_filesystem(Path(ref), opts) if kind == "fs" else sbom_image(ref, opts)
    for warning in result.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    _emit(render_sbom(result, format), output)


def _looks_like_source_tree(path: Path) -> bool:
    """A directory that is neither an OCI layout nor a root filesystem is a source tree."""
    if not path.is_dir():
        return False
    if (path / "oci-layout").is_file() or ((path / "index.json").is_file() and (path / "blobs").is_dir()):
        return False
    rootfs_markers = ("etc/os-release", "usr/lib/os-release", "var/lib/dpkg/status", "lib/apk/db/installed", "bin/sh")
    return not any((path / m).exists() for m in rootfs_markers)


def severity_names() -> list[str]:
    return [s.name for s in Severity]
