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
from garrison.model.network import Action, Endpoint, EndpointKind, FlowLog, NamedPort, PolicyHit, Verdict
from garrison.model.result import ScanResult

__all__ = [
    "CVSS",
    "Action",
    "Artifact",
    "ArtifactKind",
    "Endpoint",
    "EndpointKind",
    "FileInfo",
    "Finding",
    "FindingKind",
    "FlowLog",
    "Layer",
    "NamedPort",
    "OperatingSystem",
    "Package",
    "PolicyHit",
    "ScanResult",
    "SecretMatch",
    "Severity",
    "Suppression",
    "Verdict",
    "VulnMatch",
    "VulnStatus",
    "Vulnerability",
]
