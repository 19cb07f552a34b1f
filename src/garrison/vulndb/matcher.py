"""Match packages against the database: ``Matcher(db).match(packages, os) -> list[VulnMatch]``.

* OS packages: ``deb`` on Debian/Ubuntu by *source* package (``source_version`` when known)
  against ``Debian:<major>`` / ``Ubuntu:<version>[:LTS]``; ``apk`` on Alpine by origin against
  ``Alpine:v<major.minor>``; ``rpm`` on AlmaLinux/Rocky/RHEL-like by name against
  ``AlmaLinux:<major>`` (``epoch:version-release``). Distro statuses are carried into the match.
* Language packages: purl type -> OSV ecosystem (PyPI names PEP 503-normalised; Maven
  ``group:artifact``, npm ``@scope/name``, Go module paths and ``stdlib``, Packagist
  ``vendor/name``), OSV range semantics (see :mod:`garrison.vulndb.ranges`) plus ``versions`` lists.
* De-duplication: matches of one package whose ids are aliases of each other are merged; the
  preferred source wins (for OS packages the distro's own tracker, then its advisories, then
  anything else), then the ecosystem-native id (PYSEC/GO/RUSTSEC/... before GHSA before CVE).
  A "not affected" statement suppresses matches of that vulnerability from equal or less
  preferred sources.
* Severity: see :mod:`garrison.vulndb.scoring`.

Entries are loaded per (ecosystem, package) in batches (one SQL query per batch, only the
columns matching reads). Their ranges are compiled once per distinct stored JSON text and version
scheme (the new texts of a batch decoded as one document): distro feeds repeat a few ranges over
thousands of entries, so the text is the cache key and one package's evaluation decides each
distinct text once. Candidates are plain tuples until grouped into matches. Version keys,
vulnerability details and the evaluation of each (ecosystem, package, version) seen are cached
too (a bounded memo: images share most of their packages); ``Vulnerability`` objects are shared
by the matches that refer to the same advisory, so treat them as read-only. Alias maps are loaded
for candidate ids only (an alias's own aliases matter to no output). Only :class:`VulnMatch`
objects are built per package.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from garrison.model import OperatingSystem, Package, Vulnerability, VulnMatch, VulnStatus
from garrison.vulndb.db import VulnDB
from garrison.vulndb.ecosystems import (
    normalise_name,
    package_ecosystems,
    package_lookup_name,
    scheme_name,
)
from garrison.vulndb.ranges import CompiledRange, Hit, compile_ranges
from garrison.vulndb.records import NOT_AFFECTED
from garrison.vulndb.scoring import SeverityRow, choose, cvss_records
from garrison.vulndb.versions import InvalidVersion, VersionScheme, get_scheme

logger = logging.getLogger(__name__)

#: Source preference for OS packages (lower wins); anything else ranks after these.
OS_SOURCE_PRECEDENCE = {
    "debian-tracker": 0,
    "alpine-secdb": 0,
    "osv:AlmaLinux": 0,
    "osv:Rocky Linux": 0,
    "debian-dsa": 1,
    "debian-dla": 1,
}
_OTHER_OS_SOURCE = 5
_OS_TYPES = frozenset({"deb", "apk", "rpm"})
_INVALID = object()
_NO_VERSIONS: frozenset[str] = frozenset()
_NO_IDS: frozenset[str] = frozenset()
_STATUSES = {str(s): s for s in VulnStatus}


def _promote_survivors() -> None:
    """Move every tracked object to the oldest generation (``gc.freeze()`` then ``unfreeze()``,
    two list splices). What a cold match leaves alive is mostly the matcher's caches, long-lived
    by design; left in the youngest generation, the next two young collections would each walk
    all of them (a quarter of a cold match) only to promote them anyway. Objects stay collectable
    (full collections see them); young garbage of the process is merely collected by the next
    full collection instead of a young one."""
    gc.freeze()
    gc.unfreeze()


def _label(feed: str) -> str:
    return feed.split(":", 1)[0] if feed.startswith("alpine-secdb:") else feed


def _id_rank(vuln_id: str) -> int:
    if vuln_id.startswith("CVE-"):
        return 2
    if vuln_id.startswith("GHSA-"):
        return 1
    return 0


def installed_version(pkg: Package) -> str:
    """The version compared with advisories (source version for deb, ``epoch:`` for rpm, no
    ``v`` for Go); ``""`` when there is none to compare."""
    version = pkg.version or ""
    if pkg.type == "deb":
        return pkg.source_version or version
    if pkg.type == "rpm":
        if pkg.epoch and ":" not in version:
            return f"{pkg.epoch}:{version}"
        return version
    if pkg.type == "golang":
        if version in ("(devel)", ""):
            return ""
        return version[1:] if version.startswith("v") else version
    return version


@dataclass(slots=True)
class _Entry:
    package: str
    vuln_id: str
    source: str
    url: str
    status: str
    severity: str
    ranges: str  # the stored JSON text: entries with equal text share one compiled form
    versions: frozenset[str]
    fixed: tuple[str, ...]  # read only with ``versions`` (a range hit carries its own fix)
    always: bool  # a distro status with no version bound (open, no-dsa, end-of-life ...)
    not_affected: bool
    os_precedence: int
    version_keys: set[Any] | bool | None = False  # keys of ``versions``: False = not built yet,
    # None = the scheme's keys are unhashable (compare strings only)


#: a candidate: (entry, source precedence, matched range, fixed versions); a plain tuple, since
#: evaluation makes one per hit and most become a match as they are
_Cand = tuple[_Entry, int, str, tuple[str, ...]]


_Result = tuple[tuple[_Cand, ...], tuple[tuple[int, str], ...], tuple[str, ...]]
_NOTHING: _Result = ((), (), ())
#: memoised (ecosystem, name, version) evaluations kept before the memo starts over
_MEMO_MAX = 250_000


@dataclass(slots=True)
class _Group:
    ids: set[str]
    primary: _Cand
    fixed: list[str]
    merged: bool = False


class _Keys:
    """Version keys of one scheme, cached (``_INVALID`` remembers versions that do not parse)."""

    __slots__ = ("cache", "compiled", "scheme")

    def __init__(self, scheme: VersionScheme) -> None:
        self.scheme = scheme
        self.cache: dict[str, Any] = {}
        #: compiled ranges by their stored JSON text (distro feeds repeat the same few ranges
        #: across thousands of entries: a tenth as many distinct texts as entries)
        self.compiled: dict[str, list[CompiledRange]] = {}

    def key(self, text: str) -> Any:
        k = self.cache.get(text, None)
        if k is None:
            try:
                k = self.scheme.key(text)
            except (InvalidVersion, ValueError, TypeError):
                k = _INVALID
            self.cache[text] = k
        if k is _INVALID:
            raise InvalidVersion(f"invalid {self.scheme.name} version {text!r}")
        return k

    def try_key(self, text: str) -> Any:
        try:
            return self.key(text)
        except InvalidVersion:
            return None


def _key_set(versions: frozenset[str], keys: _Keys) -> set[Any] | None:
    """Keys of explicitly listed versions; None when the scheme's keys are unhashable."""
    out: set[Any] = set()
    for text in versions:
        k = keys.try_key(text)
        if k is None:
            continue
        try:
            out.add(k)
        except TypeError:  # fall back to string equality
            return None
    return out


class Matcher:
    """Matches packages against one open database; caches what it loads (reuse it)."""

    def __init__(self, db: VulnDB) -> None:
        self.db = db
        self._entries: dict[tuple[str, str], list[_Entry]] = {}
        self._keys: dict[str, _Keys | None] = {}  # by ecosystem (None: no scheme for it)
        self._schemes: dict[str, _Keys] = {}  # by scheme name (ecosystems share one key cache)
        # values without content share one empty object: every container the cold path leaves
        # alive is work for the garbage collector's next passes (see ``match``)
        self._aliases: dict[str, AbstractSet[str]] = {}  # the same vulnerability (merged when matched)
        self._related: dict[str, AbstractSet[str]] = {}  # linked ids (shown and used for enrichment only)
        self._vrows: dict[str, Sequence[tuple[Any, ...]]] = {}
        self._srows: dict[str, Sequence[SeverityRow]] = {}
        self._vulns: dict[tuple[Any, ...], Vulnerability] = {}
        self._targets: dict[Any, dict[tuple[Any, ...], tuple[tuple[str, str], ...]]] = {}
        self._idsets: dict[str, frozenset[str]] = {}
        self._results: dict[tuple[str, str, str, bool], _Result] = {}

    # -- loading ---------------------------------------------------------------------------

    def _scheme_keys(self, ecosystem: str) -> _Keys | None:
        if ecosystem not in self._keys:
            name = scheme_name(ecosystem)
            keys: _Keys | None = None
            if name is not None:
                try:
                    keys = self._keys_by_scheme(name)
                except KeyError:
                    logger.warning(
                        "no version scheme %r for ecosystem %s; its packages are not matched", name, ecosystem
                    )
            self._keys[ecosystem] = keys
        return self._keys[ecosystem]

    def _keys_by_scheme(self, name: str) -> _Keys:
        cached = self._schemes.get(name)
        if cached is None:
            cached = self._schemes[name] = _Keys(get_scheme(name))
        return cached

    def _load_entries(self, need: dict[str, set[str]]) -> None:
        """Rows become entries as they are: the ranges are compiled once per distinct JSON text
        and scheme (the texts of a batch decoded as one document), the entries keep the text as
        the key of their compiled ranges; the listed and fixed versions are decoded only for the
        rare entries whose ``listed`` is not empty."""
        precedence = OS_SOURCE_PRECEDENCE.get
        for eco, names in need.items():
            found: dict[str, list[_Entry]] = {n: [] for n in names}
            rows = self.db.affected_rows(eco, sorted(names))
            keys = self._scheme_keys(eco) if rows else None
            compiled = keys.compiled if keys is not None else {}
            pending: dict[str, str] = {}  # ranges text not compiled yet -> where it was seen first
            for package, vuln_id, source, url, status, severity, ranges, listed, fixed in rows:
                entries = found.get(package)
                if entries is None:
                    entries = found[package] = []
                not_affected = status == NOT_AFFECTED
                always = ranges == "[]" and bool(status) and not not_affected and status != "fixed"
                if always or not_affected:
                    ranges = "[]"  # never compiled
                elif ranges not in compiled and ranges not in pending:
                    pending[ranges] = f"{vuln_id} {eco}/{package}"
                if listed == "[]":
                    versions, fixed_versions = _NO_VERSIONS, ()
                else:
                    versions, fixed_versions = frozenset(json.loads(listed)), tuple(json.loads(fixed))
                entries.append(
                    _Entry(
                        package,
                        vuln_id,
                        source,
                        url,
                        status,
                        severity,
                        ranges,
                        versions,
                        fixed_versions,
                        always,
                        not_affected,
                        precedence(source, _OTHER_OS_SOURCE),
                    )
                )
            if pending and keys is not None:
                texts = list(pending)
                for text, decoded in zip(texts, json.loads("[" + ",".join(texts) + "]"), strict=True):
                    compiled[text] = compile_ranges(decoded, keys.key, pending[text])
            for name, entries in found.items():
                self._entries[(eco, name)] = entries

    def _alias_maps(self, ids: Iterable[str]) -> None:
        missing = sorted(i for i in ids if i not in self._aliases)
        if missing:
            for vid, (aliases, related) in self.db.alias_map(missing).items():
                self._aliases[vid] = aliases or _NO_IDS
                self._related[vid] = related or _NO_IDS

    def _load_vulns(self, ids: AbstractSet[str]) -> None:
        """Rows of ``ids``, their aliases and related ids, in one batch per table, so building
        the advisories of one scan costs a handful of queries, not a few per advisory. The alias
        maps of the aliases themselves are not loaded: only those of candidates and primaries are
        read (loading them for every alias was a tenth of a cold match)."""
        self._alias_maps(ids)
        wanted: set[str] = set()
        for i in ids:
            wanted.add(i)
            wanted.update(self._aliases.get(i, ()))
            wanted.update(self._related.get(i, ()))
        todo = sorted(i for i in wanted if i not in self._vrows)
        if not todo:
            return
        vrows: dict[str, list[tuple[Any, ...]]] = {}
        srows: dict[str, list[SeverityRow]] = {}
        rows = self.db.vulnerability_rows(todo)
        # refs and cwes (JSON lists) decoded once per row, in one document for the batch
        lists = json.loads("[" + ",".join(f"[{r[6]},{r[7]}]" for r in rows) + "]") if rows else []
        for row, (refs, cwes) in zip(rows, lists, strict=True):
            vrows.setdefault(row[0], []).append((*row[:6], tuple(refs) or (), tuple(cwes) or ()))
        for vuln_id, kind, version, vector, score, source, feed, primary in self.db.severity_rows(todo):
            srows.setdefault(vuln_id, []).append(
                SeverityRow(kind, version, vector, score, source, _label(feed), bool(primary))
            )
        for i in todo:
            self._vrows[i] = vrows.get(i, ())
            self._srows[i] = srows.get(i, ())

    # -- evaluation ------------------------------------------------------------------------

    @staticmethod
    def _compiled(entry: _Entry, eco: str, keys: _Keys) -> list[CompiledRange]:
        compiled = keys.compiled.get(entry.ranges)
        if compiled is None:
            where = f"{entry.vuln_id} {eco}/{entry.package}"
            compiled = keys.compiled[entry.ranges] = compile_ranges(json.loads(entry.ranges), keys.key, where)
        return compiled

    @staticmethod
    def _listed(entry: _Entry, keys: _Keys, version: str, vkey: Any) -> Hit | None:
        """A hit through the explicit ``versions`` list (string or key equality)."""
        if version not in entry.versions:
            vkeys = entry.version_keys
            if vkeys is False:
                vkeys = entry.version_keys = _key_set(entry.versions, keys)
            if not isinstance(vkeys, set) or vkey not in vkeys:
                return None
        later = [f for f in entry.fixed if (fk := keys.try_key(f)) is not None and fk > vkey]
        later.sort(key=keys.key)
        return Hit(f"={version}", later[0] if later else None)

    # -- matching --------------------------------------------------------------------------

    def match(self, packages: Sequence[Package], os: OperatingSystem | None = None) -> list[VulnMatch]:
        """The vulnerabilities of ``packages`` (installed on ``os``, if known).

        The cyclic garbage collector is paused meanwhile: matching allocates tens of thousands
        of acyclic objects (entries, compiled ranges, matches), and each allocation burst made
        the collector rescan every live object of the process, which took more than half of a
        cold match. It is re-enabled (if it was on) before returning; nothing here makes cycles.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._match(packages, os)
        finally:
            if was_enabled:
                _promote_survivors()
                gc.enable()

    def _match(self, packages: Sequence[Package], os: OperatingSystem | None) -> list[VulnMatch]:
        plan: list[tuple[Package, tuple[tuple[str, str], ...], str]] = []
        need: dict[str, set[str]] = {}
        os_key = (os.family, os.version, os.codename) if os is not None else None
        targets_cache = self._targets.setdefault(os_key, {})
        known = self._entries
        for pkg in packages:
            version = installed_version(pkg)
            if not version:
                continue
            tkey = (pkg.type, pkg.namespace, pkg.name, pkg.source_name)
            targets = targets_cache.get(tkey)
            if targets is None:
                lookup = package_lookup_name(pkg)
                targets = tuple((eco, normalise_name(eco, lookup)) for eco in package_ecosystems(pkg, os))
                targets_cache[tkey] = targets
                for target in targets:
                    if target not in known:
                        need.setdefault(target[0], set()).add(target[1])
            if targets:
                plan.append((pkg, targets, version))
        if need:
            self._load_entries(need)

        found: list[tuple[Package, str, list[_Cand], list[tuple[int, str]]]] = []
        ids: set[str] = set()
        memo = self._results
        if len(memo) > _MEMO_MAX:
            memo.clear()
        entries_of = self._entries
        for pkg, targets, version in plan:
            cands: list[_Cand] = []
            negatives: list[tuple[int, str]] = []
            is_os = pkg.type in _OS_TYPES
            for target in targets:
                if not entries_of.get(target):  # most packages are named by no advisory
                    continue
                eco, name = target
                mkey = (eco, name, version, is_os)
                result = memo.get(mkey)
                if result is None:
                    result = memo[mkey] = self._evaluate(eco, name, version, is_os, pkg.type)
                if result is _NOTHING:
                    continue
                cands.extend(result[0])
                negatives.extend(result[1])
                ids.update(result[2])
            if cands:
                found.append((pkg, version, cands, negatives))
        if not found:
            return []
        self._load_vulns(ids)
        out: list[VulnMatch] = []
        for pkg, version, cands, negatives in found:
            out.extend(self._package_matches(pkg, version, cands, negatives))
        return out

    def _evaluate(self, eco: str, name: str, version: str, is_os: bool, ptype: str) -> _Result:
        """Candidates, "not affected" statements and vulnerability ids of one installed version
        against the entries of (``eco``, ``name``); memoised per version by :meth:`match`."""
        entries = self._entries.get((eco, name))
        if not entries:
            return _NOTHING
        keys = self._keys.get(eco) if eco in self._keys else self._scheme_keys(eco)
        if keys is None:
            return _NOTHING
        vkey = keys.cache.get(version)
        if vkey is None or vkey is _INVALID:
            vkey = keys.try_key(version)
            if vkey is None:
                logger.debug("%s %s: %r is not a valid %s version", ptype, name, version, keys.scheme.name)
                return _NOTHING
        cands: list[_Cand] = []
        negatives: list[tuple[int, str]] = []
        ids: list[str] = []
        hits: dict[str, Hit | None] = {}  # by ranges text: entries of one package share most ranges
        compiled_by_text = keys.compiled
        for entry in entries:
            prec = entry.os_precedence if is_os else 0
            if entry.not_affected:
                negatives.append((prec, entry.vuln_id))
                ids.append(entry.vuln_id)
                continue
            if entry.always:
                cands.append((entry, prec, "*", ()))
                ids.append(entry.vuln_id)
                continue
            text = entry.ranges
            if text in hits:
                hit = hits[text]
            else:
                hit = None
                compiled = compiled_by_text.get(text)
                for rng in compiled if compiled is not None else self._compiled(entry, eco, keys):
                    simple = rng.simple
                    if simple is not None:
                        lo, hi, fast = simple
                        if (lo is None or vkey >= lo) and vkey < hi:
                            hit = fast
                            break
                    else:
                        hit = rng.evaluate(vkey)
                        if hit is not None:
                            break
                hits[text] = hit
            if hit is None and entry.versions:
                hit = self._listed(entry, keys, version, vkey)
            if hit is not None:
                cands.append((entry, prec, hit.matched_range, (hit.fixed,) if hit.fixed else ()))
                ids.append(entry.vuln_id)
        if not cands and not negatives:
            return _NOTHING
        return (tuple(cands), tuple(negatives), tuple(ids))

    def _ids_of(self, vuln_id: str) -> frozenset[str]:
        ids = self._idsets.get(vuln_id)
        if ids is None:
            ids = self._idsets[vuln_id] = frozenset((vuln_id, *self._aliases.get(vuln_id, ())))
        return ids

    def _package_matches(
        self, pkg: Package, version: str, cands: list[_Cand], negatives: list[tuple[int, str]]
    ) -> list[VulnMatch]:
        if len(cands) == 1 and not negatives:
            cand = cands[0]
            return [self._build(pkg, version, cand, cand[3], None)]
        if len(cands) > 1:
            cands.sort(key=lambda c: (c[1], _id_rank(c[0].vuln_id), c[0].vuln_id))
        negs = [(prec, self._ids_of(vid)) for prec, vid in negatives]
        groups: list[_Group] = []
        index: dict[str, _Group] = {}
        for cand in cands:
            entry, precedence, _range, fixed = cand
            cids = self._ids_of(entry.vuln_id)
            if negs and any(prec <= precedence and not nids.isdisjoint(cids) for prec, nids in negs):
                continue
            group = None
            for i in cids:
                group = index.get(i)
                if group is not None:
                    break
            if group is None:
                group = _Group(set(cids), cand, list(fixed))
                groups.append(group)
                for i in cids:
                    index[i] = group
                continue
            if not cids <= group.ids:
                group.ids |= cids
                group.merged = True
                for i in cids:
                    index.setdefault(i, group)
            if entry.source == group.primary[0].source or not group.fixed:
                group.fixed.extend(f for f in fixed if f not in group.fixed)
        return [
            self._build(pkg, version, g.primary, g.fixed, frozenset(g.ids) if g.merged else None) for g in groups
        ]

    def _build(
        self, pkg: Package, version: str, cand: _Cand, fixed: Sequence[str], ids: frozenset[str] | None
    ) -> VulnMatch:
        entry = cand[0]
        vuln = self._vulnerability(entry.vuln_id, ids, entry.source, entry.severity)
        status = _STATUSES.get(entry.status)
        if status is None:
            status = VulnStatus.FIXED if fixed else VulnStatus.AFFECTED
        elif status is VulnStatus.FIXED and not fixed:
            status = VulnStatus.AFFECTED
        return VulnMatch(
            vulnerability=vuln,
            package=pkg,
            installed_version=version,
            fixed_versions=tuple(fixed),
            status=status,
            matched_range=cand[2],
            data_source=entry.source,
            data_source_url=entry.url or (vuln.references[0] if vuln.references else ""),
            matched_by=entry.package,
        )

    def _vulnerability(
        self, primary: str, merged_ids: frozenset[str] | None, source: str, vendor_word: str
    ) -> Vulnerability:
        """The advisory as one match shows it (``merged_ids``: every id of a merged group;
        None when the group is the advisory and its own aliases). Text comes from the advisory
        and its aliases (NVD's description of a CVE); CVSS and CWEs also from related ids (the
        CVEs an erratum fixes, the DSA that fixed a CVE), and ``aliases`` lists both."""
        cache_key = (primary, merged_ids, source, vendor_word)
        vuln = self._vulns.get(cache_key)
        if vuln is not None:
            return vuln
        ids = merged_ids if merged_ids is not None else self._ids_of(primary)
        vrows = self._vrows
        if primary not in self._related or not vrows.keys() >= ids:  # only the primary's links are read
            self._load_vulns(set(ids))
        related = self._related.get(primary, _NO_IDS) - ids
        if related and not vrows.keys() >= related:
            self._load_vulns(related)
        linked = sorted(related)
        own = list(vrows.get(primary, ()))
        if len(own) > 1:
            own.sort(key=lambda r: r[1] != source)
        rest = sorted(ids - {primary})
        others = [r for i in rest for r in vrows.get(i, ())]
        if len(others) > 1:
            others.sort(key=lambda r: r[1] != "nvd")
        rows = own + others
        # the first non-empty summary, details, published, modified of the rows, in one pass
        text = ["", "", "", "", "", ""]
        todo = {2, 3, 4, 5}
        for r in rows:
            for index in tuple(todo):
                if r[index]:
                    text[index] = str(r[index])
                    todo.discard(index)
            if not todo:
                break
        refs = list(dict.fromkeys(u for r in own or others for u in r[6]))
        cwes = list(dict.fromkeys(c for r in rows for c in r[7]))
        for i in linked:
            for r in vrows.get(i, ()):
                cwes.extend(c for c in r[7] if c not in cwes)
        srows = self._srows
        sev_rows = [s for i in (primary, *rest, *linked) for s in srows.get(i, ())]
        severity, sev_source = choose(sev_rows, source, vendor_word)
        vuln = Vulnerability(
            id=primary,
            aliases=tuple(sorted((ids | related) - {primary})),
            summary=text[2],
            details=text[3],
            severity=severity,
            severity_source=sev_source,
            cvss=cvss_records(sev_rows),
            references=tuple(refs),
            cwes=tuple(cwes),
            published=text[4],
            modified=text[5],
        )
        self._vulns[cache_key] = vuln
        return vuln
