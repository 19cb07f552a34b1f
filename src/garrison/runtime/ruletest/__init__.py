"""Declarative rule tests against the live sensor (``garrison rules test``).

:mod:`.suite` reads and validates suite files, :mod:`.runner` runs their cases under one live
pipeline and attributes alerts to cases, :mod:`.report` renders the results (table, JSON, JUnit).
"""

from __future__ import annotations

from garrison.runtime.ruletest.runner import CaseResult, RuleTestRunner, Seen
from garrison.runtime.ruletest.suite import Case, Expectation, Suite, load_suite, suite_from_data

__all__ = ["Case", "CaseResult", "Expectation", "RuleTestRunner", "Seen", "Suite", "load_suite", "suite_from_data"]
