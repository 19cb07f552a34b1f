"""Pod Security Standards (baseline and restricted), as the Kubernetes pod-security-admission
library evaluates them, for every policy version (see :mod:`.engine` and :mod:`.checks`)."""

from garrison.posture.k8s.pss.engine import (
    KNOWN_LATEST,
    LEVELS,
    CheckResult,
    PodVerdict,
    aggregate_reason,
    evaluate_object,
    evaluate_pod,
    parse_version,
)

__all__ = [
    "KNOWN_LATEST",
    "LEVELS",
    "CheckResult",
    "PodVerdict",
    "aggregate_reason",
    "evaluate_object",
    "evaluate_pod",
    "parse_version",
]
