"""The result of one scan: what every renderer and gate consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from garrison.model.core import Artifact, Finding, OperatingSystem, Package


@dataclass(slots=True)
class ScanResult:
    artifact: Artifact
    packages: list[Package] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    os: OperatingSystem | None = None
    created: str = ""  # RFC 3339, deterministic for equal input (see garrison.scan.clock)
    tool_version: str = ""
    scanners: tuple[str, ...] = ()
    db: dict[str, Any] = field(default_factory=dict)  # DB metadata: built, sources, schema
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "garrison.scan/v1",
            "tool": {"name": "garrison", "version": self.tool_version},
            "created": self.created,
            "artifact": self.artifact.to_dict(),
            "os": self.os.to_dict() if self.os else None,
            "scanners": list(self.scanners),
            "db": self.db,
            "packages": [p.to_dict() for p in self.packages],
            "findings": [f.to_dict() for f in self.findings],
            "warnings": list(self.warnings),
        }
