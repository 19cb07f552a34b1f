"""Garrison's shared domain model: every component talks through these types."""

from garrison.model.core import (
    CVSS,
    Artifact,
    ArtifactKind,
    FileInfo,
    Finding,
    FindingKind,
    Layer,
    OperatingSystem,
    Package,
    SecretMatch,
    Severity,
    Suppression,
    Vulnerability,
    VulnMatch,
    VulnStatus,
)
from garrison.model.result import ScanResult

__all__ = [
    "CVSS",
    "Artifact",
    "ArtifactKind",
    "FileInfo",
    "Finding",
    "FindingKind",
    "Layer",
    "OperatingSystem",
    "Package",
    "ScanResult",
    "SecretMatch",
    "Severity",
    "Suppression",
    "VulnMatch",
    "VulnStatus",
    "Vulnerability",
]
