"""Suppressions: an ignore file with justification, owner and expiry, and VEX documents.

Ignore file (YAML, ``.garrisonignore.yaml``)::

    vulnerabilities:
      - id: CVE-2023-32681          # or GHSA/PYSEC/... — aliases match too
        purls: [pkg:pypi/requests]  # optional: purl prefixes the entry is limited to
        paths: ["app/**"]           # optional: globs over the package/secret path
        justification: proxy auth is not used
        owner: platform-team
        expires: 2027-01-31         # after this date the entry stops applying, and says so
    secrets:
      - id: aws-access-key-id
        paths: ["tests/fixtures/**"]
        justification: documented example key

Trivy's plain ``.trivyignore`` (one id per line, ``# comments``, ``exp:YYYY-MM-DD``) is read too.
VEX: CycloneDX documents with ``vulnerabilities[].analysis`` and OpenVEX documents; statements
saying ``not_affected``/``false_positive``/``fixed``/``resolved`` suppress the matching finding.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import InputError
from garrison.model import Finding, FindingKind, Suppression


@dataclass(frozen=True, slots=True)
class Rule:
    ids: frozenset[str]
    kind: FindingKind
    purls: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    justification: str = ""
    owner: str = ""
    expires: dt.date | None = None
    source: str = ""
    state: str = "not_affected"
    suppression_kind: str = "ignorefile"

    def matches(self, finding: Finding) -> bool:
        if finding.kind != self.kind:
            return False
        ids = {finding.id}
        if finding.vuln is not None:
            ids.update(finding.vuln.vulnerability.aliases)
        if not ids & self.ids and "*" not in self.ids:
            return False
        if self.purls:
            purl = finding.vuln.package.purl if finding.vuln else ""
            if not any(_purl_matches(purl, p) for p in self.purls):
                return False
        if self.paths:
            path = finding.vuln.package.path if finding.vuln else (finding.secret.path if finding.secret else "")
            if not any(fnmatch.fnmatch(path, pattern) for pattern in self.paths):
                return False
        return True


def _purl_matches(purl: str, pattern: str) -> bool:
    """Prefix match that respects purl boundaries: ``pkg:pypi/requests`` matches ``…@2.19.1?x``."""
    if purl == pattern:
        return True
    if not purl.startswith(pattern):
        return False
    return purl[len(pattern)] in "@?#"


def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(f"bad expiry date {value!r} (want YYYY-MM-DD)", input_name=where) from None


def load_ignore_file(path: Path) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read ignore file: {err.strerror}", input_name=str(path)) from err
    except UnicodeDecodeError:
        raise InputError("ignore file is not UTF-8 text", input_name=str(path)) from None
    if path.suffix not in (".yaml", ".yml"):
        return _plain_rules(text, str(path))
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"malformed YAML{where}", input_name=str(path)) from None
    if not isinstance(doc, dict):
        raise InputError("expected a mapping with 'vulnerabilities' and/or 'secrets'", input_name=str(path))
    rules: list[Rule] = []
    for section, kind in (("vulnerabilities", FindingKind.VULNERABILITY), ("secrets", FindingKind.SECRET)):
        entries = doc.get(section) or []
        if not isinstance(entries, list):
            raise InputError(f"'{section}' must be a list", input_name=str(path))
        for n, entry in enumerate(entries, 1):
            where = f"{path} {section}[{n}]"
            if not isinstance(entry, dict) or not entry.get("id"):
                raise InputError("each entry needs an 'id'", input_name=where)
            ids = entry["id"] if isinstance(entry["id"], list) else [entry["id"]]
            rules.append(
                Rule(
                    ids=frozenset(str(i) for i in ids),
                    kind=kind,
                    purls=tuple(str(p) for p in entry.get("purls") or ()),
                    paths=tuple(str(p) for p in entry.get("paths") or ()),
                    justification=str(entry.get("justification") or entry.get("statement") or ""),
                    owner=str(entry.get("owner") or ""),
                    expires=_date(entry.get("expires"), where),
                    source=str(path),
                )
            )
    return rules


def _plain_rules(text: str, source: str) -> list[Rule]:
    rules: list[Rule] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        expires = None
        for extra in parts[1:]:
            if extra.startswith("exp:"):
                expires = _date(extra[4:], source)
        rule_id = parts[0]
        rules.extend(
            Rule(ids=frozenset({rule_id}), kind=kind, expires=expires, source=source)
            for kind in (FindingKind.VULNERABILITY, FindingKind.SECRET)
        )
    return rules


_VEX_SUPPRESS = {"not_affected", "false_positive", "resolved", "resolved_with_pedigree", "fixed"}


def load_vex(path: Path) -> list[Rule]:
    """CycloneDX VEX or OpenVEX statements that suppress findings."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as err:
        raise InputError(f"cannot read VEX document: {err.strerror}", input_name=str(path)) from err
    except (ValueError, UnicodeDecodeError):
        raise InputError("VEX document is not valid JSON", input_name=str(path)) from None
    if not isinstance(doc, dict):
        raise InputError("VEX document must be a JSON object", input_name=str(path))
    if doc.get("bomFormat") == "CycloneDX":
        return _cyclonedx_vex(doc, str(path))
    if "statements" in doc and str(doc.get("@context", "")).startswith("https://openvex.dev"):
        return _openvex(doc, str(path))
    raise InputError("not a CycloneDX VEX or OpenVEX document", input_name=str(path))


def _cyclonedx_vex(doc: dict[str, Any], source: str) -> list[Rule]:
    refs: dict[str, str] = {}
    for comp in doc.get("components") or []:
        if isinstance(comp, dict) and comp.get("bom-ref"):
            refs[str(comp["bom-ref"])] = str(comp.get("purl") or comp["bom-ref"])
    rules = []
    for vuln in doc.get("vulnerabilities") or []:
        if not isinstance(vuln, dict):
            continue
        analysis = vuln.get("analysis") or {}
        state = str(analysis.get("state") or "")
        if state not in _VEX_SUPPRESS or not vuln.get("id"):
            continue
        purls = tuple(
            refs.get(str(a.get("ref")), str(a.get("ref")))
            for a in vuln.get("affects") or []
            if isinstance(a, dict) and a.get("ref")
        )
        detail = str(analysis.get("detail") or analysis.get("justification") or state)
        rules.append(
            Rule(
                ids=frozenset({str(vuln["id"])}),
                kind=FindingKind.VULNERABILITY,
                purls=tuple(p.split("?")[0] for p in purls if p.startswith("pkg:")),
                justification=detail,
                source=source,
                state=state,
                suppression_kind="vex",
            )
        )
    return rules


def _openvex(doc: dict[str, Any], source: str) -> list[Rule]:
    rules = []
    for st in doc.get("statements") or []:
        if not isinstance(st, dict):
            continue
        status = str(st.get("status") or "")
        if status not in _VEX_SUPPRESS:
            continue
        vuln = st.get("vulnerability")
        vid = vuln.get("name") if isinstance(vuln, dict) else vuln
        if not vid:
            continue
        purls: list[str] = []
        for prod in st.get("products") or []:
            pid = prod.get("@id") if isinstance(prod, dict) else prod
            if isinstance(pid, str) and pid.startswith("pkg:"):
                purls.append(pid.split("?")[0])
            for sub in (prod.get("subcomponents") or []) if isinstance(prod, dict) else []:
                sid = sub.get("@id") if isinstance(sub, dict) else sub
                if isinstance(sid, str) and sid.startswith("pkg:"):
                    purls.append(sid.split("?")[0])
        justification = str(st.get("justification") or st.get("impact_statement") or status)
        rules.append(
            Rule(
                ids=frozenset({str(vid)}),
                kind=FindingKind.VULNERABILITY,
                purls=tuple(purls),
                justification=justification,
                source=source,
                state="not_affected" if status != "fixed" else "resolved",
                suppression_kind="vex",
            )
        )
    return rules


def apply_suppressions(findings: Iterable[Finding], rules: list[Rule], today: dt.date | None = None) -> list[str]:
    """Mark findings suppressed by ``rules``; return warnings (expired entries, unused none)."""
    today = today or dt.date.today()
    warnings: list[str] = []
    live = []
    for rule in rules:
        if rule.expires is not None and rule.expires < today:
            warnings.append(
                f"{rule.source}: ignore entry for {', '.join(sorted(rule.ids))} expired on {rule.expires.isoformat()}; "
                "it no longer applies"
            )
        else:
            live.append(rule)
    for finding in findings:
        if finding.suppression is not None:
            continue
        for rule in live:
            if rule.matches(finding):
                justification = rule.justification
                if rule.owner:
                    justification = (
                        f"{justification} (owner: {rule.owner})" if justification else f"owner: {rule.owner}"
                    )
                finding.suppression = Suppression(
                    kind=rule.suppression_kind,
                    justification=justification,
                    source=rule.source,
                    state=rule.state,
                    expires=rule.expires.isoformat() if rule.expires else "",
                )
                break
    return warnings
