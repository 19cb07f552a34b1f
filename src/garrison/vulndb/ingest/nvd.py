"""NVD CVE data (API 2.0 responses and the legacy 1.1 JSON feeds) -> Advisories for enrichment.

NVD records carry no package ranges Garrison matches on (CPE matching is not done); they add
descriptions, CWEs, references and CVSS vectors (v2, v3.0, v3.1, v4.0; NVD's own and the CNAs')
to the CVEs other sources match. Rejected CVEs are recorded as withdrawn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError
from garrison.vulndb.ingest._common import as_dict, as_list, as_str, load_json, read_bytes
from garrison.vulndb.records import Advisory, SeverityRecord

logger = logging.getLogger(__name__)

SOURCE = "nvd"
NVD_EMAIL = "nvd@nist.gov"
CVE_URL = "https://nvd.nist.gov/vuln/detail/"

_METRICS = (
    ("cvssMetricV40", "CVSS_V4"),
    ("cvssMetricV31", "CVSS_V3"),
    ("cvssMetricV30", "CVSS_V3"),
    ("cvssMetricV2", "CVSS_V2"),
)


def looks_like_nvd(doc: Any) -> bool:
    return isinstance(doc, dict) and (
        (isinstance(doc.get("vulnerabilities"), list) and doc.get("format", "NVD_CVE") == "NVD_CVE")
        or isinstance(doc.get("CVE_Items"), list)
    )


def _scorer(source: str) -> str:
    return SOURCE if source in ("", NVD_EMAIL) else source


def _english(items: list[Any], where: str, name: str) -> str:
    texts: list[str] = []
    for i, item in enumerate(items):
        item = as_dict(item, f"{where}[{i}]", name)
        value = as_str(item.get("value"), f"{where}[{i}].value", name)
        if item.get("lang", "en") == "en" and value:
            texts.append(value)
    return "\n".join(texts)


def _cwes(weaknesses: list[Any], where: str, name: str) -> list[str]:
    out: list[str] = []
    for i, weakness in enumerate(weaknesses):
        weakness = as_dict(weakness, f"{where}[{i}]", name)
        for j, desc in enumerate(as_list(weakness.get("description"), f"{where}[{i}].description", name)):
            value = as_str(as_dict(desc, f"{where}[{i}].description[{j}]", name).get("value"), "cwe", name)
            if value.startswith("CWE-") and value not in out:
                out.append(value)
    return out


def parse_cve_v2(item: Any, name: str) -> Advisory:
    """One ``vulnerabilities[]`` item of an API 2.0 response."""
    cve = as_dict(as_dict(item, "vulnerabilities[]", name).get("cve"), "cve", name)
    cid = as_str(cve.get("id"), "cve.id", name, required=True)
    where = cid
    adv = Advisory(
        id=cid,
        source=SOURCE,
        feed=SOURCE,
        details=_english(
            as_list(cve.get("descriptions"), f"{where}.descriptions", name), f"{where}.descriptions", name
        ),
        published=as_str(cve.get("published"), f"{where}.published", name),
        modified=as_str(cve.get("lastModified"), f"{where}.lastModified", name),
        cwes=_cwes(as_list(cve.get("weaknesses"), f"{where}.weaknesses", name), f"{where}.weaknesses", name),
        url=CVE_URL + cid,
    )
    if cve.get("vulnStatus") == "Rejected":
        adv.withdrawn = adv.modified or adv.published or "rejected"
    for i, ref in enumerate(as_list(cve.get("references"), f"{where}.references", name)):
        url = as_str(as_dict(ref, f"{where}.references[{i}]", name).get("url"), "url", name)
        if url and url not in adv.references:
            adv.references.append(url)
    metrics = as_dict(cve.get("metrics") or {}, f"{where}.metrics", name)
    for key, kind in _METRICS:
        for i, metric in enumerate(as_list(metrics.get(key), f"{where}.metrics.{key}", name)):
            metric = as_dict(metric, f"{where}.metrics.{key}[{i}]", name)
            data = as_dict(metric.get("cvssData"), f"{where}.metrics.{key}[{i}].cvssData", name)
            vector = as_str(data.get("vectorString"), f"{where}.metrics.{key}[{i}].vectorString", name)
            if vector:
                source = as_str(metric.get("source"), f"{where}.metrics.{key}[{i}].source", name)
                primary = metric.get("type") == "Primary"
                adv.severities.append(SeverityRecord(kind, vector, _scorer(source), primary))
    return adv


def parse_cve_v11(item: Any, name: str) -> Advisory:
    """One ``CVE_Items[]`` entry of a legacy 1.1 feed file."""
    item = as_dict(item, "CVE_Items[]", name)
    cve = as_dict(item.get("cve"), "cve", name)
    meta = as_dict(cve.get("CVE_data_meta"), "cve.CVE_data_meta", name)
    cid = as_str(meta.get("ID"), "CVE_data_meta.ID", name, required=True)
    desc = as_dict(cve.get("description") or {}, f"{cid}.description", name)
    adv = Advisory(
        id=cid,
        source=SOURCE,
        feed=SOURCE,
        details=_english(as_list(desc.get("description_data"), f"{cid}.description_data", name), cid, name),
        published=as_str(item.get("publishedDate"), f"{cid}.publishedDate", name),
        modified=as_str(item.get("lastModifiedDate"), f"{cid}.lastModifiedDate", name),
        url=CVE_URL + cid,
    )
    problem = as_dict(cve.get("problemtype") or {}, f"{cid}.problemtype", name)
    adv.cwes = _cwes(as_list(problem.get("problemtype_data"), f"{cid}.problemtype_data", name), cid, name)
    refs = as_dict(cve.get("references") or {}, f"{cid}.references", name)
    for i, ref in enumerate(as_list(refs.get("reference_data"), f"{cid}.reference_data", name)):
        url = as_str(as_dict(ref, f"{cid}.reference_data[{i}]", name).get("url"), "url", name)
        if url and url not in adv.references:
            adv.references.append(url)
    impact = as_dict(item.get("impact") or {}, f"{cid}.impact", name)
    for base, inner, kind in (("baseMetricV3", "cvssV3", "CVSS_V3"), ("baseMetricV2", "cvssV2", "CVSS_V2")):
        if base in impact:
            data = as_dict(as_dict(impact[base], f"{cid}.{base}", name).get(inner), f"{cid}.{base}.{inner}", name)
            vector = as_str(data.get("vectorString"), f"{cid}.{base}.vectorString", name)
            if vector:
                adv.severities.append(SeverityRecord(kind, vector, SOURCE, primary=True))
    return adv


def parse_nvd(doc: Any, name: str) -> Iterator[Advisory]:
    doc = as_dict(doc, "NVD document", name)
    if "vulnerabilities" in doc:
        for item in as_list(doc["vulnerabilities"], "vulnerabilities", name):
            yield parse_cve_v2(item, name)
    elif "CVE_Items" in doc:
        for item in as_list(doc["CVE_Items"], "CVE_Items", name):
            yield parse_cve_v11(item, name)
    else:
        raise InputError("neither an NVD API 2.0 response nor a 1.1 feed", input_name=name)


def read_nvd(path: Path) -> Iterator[Advisory]:
    yield from parse_nvd(load_json(read_bytes(path), str(path)), str(path))
