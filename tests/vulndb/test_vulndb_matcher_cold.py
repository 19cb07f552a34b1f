"""The cold matching path (ranges compiled once per distinct stored text, columns fetched only when
used, alias maps of aliases loaded only when a merged group needs them) gives exactly what one
fresh matcher per package gives, on the real advisory snapshots."""

from __future__ import annotations

import json
import random
from pathlib import Path

from garrison.model import OperatingSystem, Package
from garrison.vulndb.db import VulnDB
from garrison.vulndb.importer import ImportSummary
from garrison.vulndb.matcher import Matcher

_GROUPS = {
    "Debian:11": ("deb", OperatingSystem("debian", "11", codename="bullseye")),
    "AlmaLinux:9": ("rpm", OperatingSystem("almalinux", "9.3")),
    "PyPI": ("pypi", None),
}


def _packages(db: VulnDB, eco: str, ptype: str, count: int) -> list[Package]:
    """``count`` packages the advisories of ``eco`` name, at versions taken from their ranges."""
    rng = random.Random(eco)
    by_name: dict[str, list[str]] = {}
    for name, ranges in db.conn.execute("SELECT package, ranges FROM affected WHERE ecosystem = ?", (eco,)):
        by_name.setdefault(name, []).extend(v for r in json.loads(ranges) for _k, v in r[1] if v != "0")
    out: list[Package] = []
    for name in rng.sample(sorted(by_name), min(count, len(by_name))):
        versions = by_name[name] or ["1.0"]
        version = rng.choice(versions)
        if ptype == "deb":
            out.append(Package(name, version + "~", ptype, source_name=name))
        elif ptype == "rpm":
            out.append(Package(name, version, ptype, source_name=name))
        else:
            out.append(Package(name, version, ptype))
    return out


def test_batch_equals_one_fresh_matcher_per_package(full_import: tuple[Path, ImportSummary]) -> None:
    with VulnDB.open(full_import[0]) as db:
        total = merged = 0
        for eco, (ptype, os) in _GROUPS.items():
            pkgs = _packages(db, eco, ptype, 60)
            batch = [m.to_dict() for m in Matcher(db).match(pkgs, os)]
            alone = [m.to_dict() for pkg in pkgs for m in Matcher(db).match([pkg], os)]
            assert batch == alone, eco
            total += len(batch)
            merged += sum(1 for m in batch if m["vulnerability"]["aliases"])
        assert total > 100  # the sample really matches
        assert merged > 0  # and includes advisories shown with their aliases


def test_equal_ranges_texts_share_one_compiled_form(full_import: tuple[Path, ImportSummary]) -> None:
    with VulnDB.open(full_import[0]) as db:
        ptype, os = _GROUPS["AlmaLinux:9"]
        pkgs = _packages(db, "AlmaLinux:9", ptype, 80)
        matcher = Matcher(db)
        assert matcher.match(pkgs, os)
        entries = [e for (eco, _n), es in matcher._entries.items() if eco == "AlmaLinux:9" for e in es]
        keys = matcher._keys["AlmaLinux:9"]
        assert keys is not None
        texts = {e.ranges for e in entries if not e.always and not e.not_affected}
        assert texts <= keys.compiled.keys()
        assert len(texts) < len(entries)  # distro feeds repeat their ranges across entries
        # a second matcher on the same data agrees with the cached one (nothing depends on order)
        again = Matcher(db).match(list(reversed(pkgs)), os)
        assert sorted(repr(m.to_dict()) for m in again) == sorted(repr(m.to_dict()) for m in matcher.match(pkgs, os))
