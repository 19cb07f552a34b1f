"""Property tests: any model content renders in every format, and the standard formats stay schema-valid."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import (
    CVSS,
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    Layer,
    OperatingSystem,
    Package,
    ScanResult,
    SecretMatch,
    Severity,
    Suppression,
    Vulnerability,
    VulnMatch,
    VulnStatus,
)
from garrison.model.purl import purl_for
from garrison.report import FORMATS, SBOM_FORMATS, render, render_sbom
from garrison.report.validate import validate

text = st.text(max_size=24)
name = st.text(min_size=1, max_size=16)
severity = st.sampled_from(list(Severity))
timestamps = st.sampled_from(["", "2024-02-29T12:00:00Z", "2024-13-45T99:00:00Z", "yesterday", "2023-05-04T04:29:29.797493Z"])


@st.composite
def packages(draw: st.DrawFn) -> Package:
    pkg = Package(
        name=draw(name),
        version=draw(text),
        type=draw(st.sampled_from(["deb", "rpm", "apk", "npm", "pypi", "golang", "maven"])),
        path=draw(text),
        layer=draw(st.none() | st.just("sha256:" + "c" * 64)),
        namespace=draw(st.none() | name),
        source_name=draw(st.none() | name),
        arch=draw(st.none() | st.sampled_from(["amd64", "x86_64"])),
        epoch=draw(st.none() | st.integers(0, 3)),
        licenses=tuple(draw(st.lists(st.sampled_from(["MIT", "GPLv2+", "MIT OR Apache-2.0", "", "(c) me"]) | text, max_size=3))),
        dev=draw(st.booleans()),
        optional=draw(st.booleans()),
    )
    if draw(st.booleans()):
        try:
            pkg.purl = purl_for(pkg, OperatingSystem("debian", "12"))
        except ValueError:
            pkg.purl = ""
    return pkg


@st.composite
def findings(draw: st.DrawFn, pkgs: list[Package]) -> Finding:
    sev = draw(severity)
    suppression = draw(
        st.none()
        | st.builds(Suppression, kind=st.sampled_from(["vex", "ignorefile"]), justification=text, source=text,
                    state=st.sampled_from(["not_affected", "fixed", "false_positive", "weird"]) | text)
    )
    if draw(st.booleans()):
        s = SecretMatch(draw(name), draw(text), draw(text), draw(text), draw(st.integers(0, 10_000)), draw(text),
                        draw(st.none() | st.just("sha256:" + "d" * 64)))
        return Finding(s.rule_id, FindingKind.SECRET, sev, s.title, s.path or "secrets", secret=s, suppression=suppression)
    pkg = draw(st.sampled_from(pkgs))
    cvss = tuple(
        CVSS(v, draw(text), draw(st.floats(0, 10, allow_nan=False)), draw(text))
        for v in draw(st.lists(st.sampled_from(["2.0", "3.0", "3.1", "4.0", "9.9"]), max_size=3))
    )
    vuln = Vulnerability(
        id=draw(name), aliases=tuple(draw(st.lists(name, max_size=2))), summary=draw(text), details=draw(text),
        severity=sev, severity_source=draw(text), cvss=cvss,
        references=tuple(draw(st.lists(st.sampled_from(["https://example.org/a", "ftp://x", ""]) | text, max_size=2))),
        cwes=tuple(draw(st.lists(st.sampled_from(["CWE-79", "cwe-20", "NVD-CWE-Other"]), max_size=2))),
        published=draw(timestamps), modified=draw(timestamps),
    )
    match = VulnMatch(vuln, pkg, draw(text), fixed_versions=tuple(draw(st.lists(text, max_size=2))),
                      status=draw(st.sampled_from(list(VulnStatus))), matched_range=draw(text), data_source=draw(text),
                      data_source_url=draw(st.sampled_from(["", "https://osv.dev/x", "nope"])))
    return Finding(vuln.id, FindingKind.VULNERABILITY, sev, draw(text), draw(text), vuln=match, suppression=suppression)


@st.composite
def results(draw: st.DrawFn) -> ScanResult:
    pkgs = draw(st.lists(packages(), min_size=1, max_size=6))
    found = draw(st.lists(findings(pkgs), max_size=8))
    kind = draw(st.sampled_from(list(ArtifactKind)))
    artifact = Artifact(draw(name), kind, digest=draw(st.sampled_from(["", "sha256:" + "a" * 64])),
                        repo_tags=tuple(draw(st.lists(name, max_size=2))), layers=[Layer("sha256:1", "sha256:2")])
    os_ = draw(st.none() | st.builds(OperatingSystem, family=name, version=text, name=text, codename=text))
    return ScanResult(artifact, packages=pkgs, findings=found, os=os_, created=draw(timestamps),
                      tool_version=draw(st.sampled_from(["", "0.1.0"])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results())
def test_any_result_renders_and_validates(result: ScanResult) -> None:
    for fmt in FORMATS:
        out = render(result, fmt, width=60)
        assert out.endswith("\n")
        if fmt in ("cyclonedx", "spdx-json", "sarif"):
            assert validate(out, fmt) == [], fmt
        elif fmt == "json":
            assert json.loads(out)["summary"]["packages"] == len(result.packages)
    for fmt in SBOM_FORMATS:
        assert render_sbom(result, fmt, width=60).endswith("\n")
    assert validate(render_sbom(result, "cyclonedx"), "cyclonedx") == []
