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
columns matching reads, mostly small integers: the id of the entry's compiled ranges and of its
(source, status, severity), see :mod:`garrison.vulndb.forms`). The ranges were compiled at import,
once per distinct text and version scheme, and are decoded with ``marshal`` once per id: cold
matching parses only the installed versions (schemes whose keys are objects, and a scheme whose
keys no longer match the stored probe digest, compile from the stored text instead). One
package's evaluation decides each distinct form once. Candidates are plain tuples until grouped
into matches. Version keys, vulnerability details and the evaluation of each (ecosystem, package,
version) seen are cached too (a bounded memo: images share most of their packages);
``Vulnerability`` objects are shared by the matches that refer to the same advisory, so treat them
as read-only. Alias maps are loaded for candidate ids only (an alias's own aliases matter to no
output); references and CWEs are decoded (one JSON document per batch) only for the rows that
have any. Only :class:`VulnMatch` objects are built per match (positionally: keywords cost as much
again); an unmerged match's advisory is cached on its entry, and a severity decided by the
vendor's word alone per (source, word).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import chain
from typing import Any

from garrison.core.errors import DatabaseError
from garrison.model import OperatingSystem, Package, Severity, Vulnerability, VulnMatch, VulnStatus
from garrison.vulndb.db import FIX_HINT, VulnDB
from garrison.vulndb.ecosystems import (
    normalise_name,
    package_ecosystems,
    package_lookup_name,
    scheme_name,
)
from garrison.vulndb.forms import decode_form, parse_digests, probe_digest
from garrison.vulndb.ranges import Form, MatchHit, compile_ranges, form_of, general_hit
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
_NO_ENTRIES: tuple[()] = ()
#: package types whose installed version is compared as it is (see :func:`installed_version`)
_VERSION_AS_IS = frozenset({"apk", "pypi", "npm", "maven", "gem", "cargo", "composer", "nuget"})


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
    severity: str
    ranges: int  # id of the compiled ranges (range_forms.id; 0: none): equal ids share one form
    versions: frozenset[str]
    fixed: tuple[str, ...]  # read only with ``versions`` (a range hit carries its own fix)
    always: bool  # a distro status with no version bound (open, no-dsa, end-of-life ...)
    not_affected: bool
    os_precedence: int
    status: VulnStatus | None  # the stored status (None: derived from the fix)
    version_keys: set[Any] | bool | None = False  # keys of ``versions``: False = not built yet,
    # None = the scheme's keys are unhashable (compare strings only)
    vuln: Vulnerability | None = None  # the advisory as an unmerged match of this entry shows it


#: what an ``affected.profile`` id stands for: (source, severity, status, not_affected, a status
#: that needs no ranges, OS source precedence)
_Profile = tuple[str, str, VulnStatus | None, bool, bool, int]


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
    """Version keys of one scheme, cached (``_INVALID`` remembers versions that do not parse),
    and the compiled ranges forms of the scheme by id."""

    __slots__ = ("cache", "compiled", "scheme", "stored")

    def __init__(self, scheme: VersionScheme, stored: bool) -> None:
        self.scheme = scheme
        self.cache: dict[str, Any] = {}
        #: compiled ranges by form id (distro feeds repeat the same few ranges across thousands
        #: of entries: a fifth as many distinct forms as entries)
        self.compiled: dict[int, Form] = {}
        #: whether the stored forms are keys of this scheme (else compile from the ranges text)
        self.stored = stored

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
        self._entries: dict[tuple[str, str], Sequence[_Entry]] = {}
        self._keys: dict[str, _Keys | None] = {}  # by ecosystem (None: no scheme for it)
        self._schemes: dict[str, _Keys] = {}  # by scheme name (ecosystems share one key cache)
        self._digests: dict[str, str] | None = None  # probe digests of the stored forms by scheme
        self._profiles: dict[int, _Profile] | None = None
        # values without content share one empty object: every container the cold path leaves
        # alive is work for the garbage collector's next passes (see ``match``)
        self._aliases: dict[str, AbstractSet[str]] = {}  # the same vulnerability (merged when matched)
        self._related: dict[str, AbstractSet[str]] = {}  # linked ids (shown and used for enrichment only)
        self._vrows: dict[str, Sequence[tuple[Any, ...]]] = {}
        self._srows: dict[str, Sequence[SeverityRow]] = {}
        self._words: dict[tuple[str, str], tuple[Severity, str]] = {}  # severity of (source, word) alone
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
            scheme = get_scheme(name)
            if self._digests is None:
                self._digests = parse_digests(self.db.meta_value("range_keys"))
            digest = probe_digest(scheme)  # "" for object keys: those forms are stored as text
            stored = bool(digest) and self._digests.get(name) == digest
            if digest and not stored and name in self._digests:
                logger.warning(
                    "%s: the %s ranges were compiled by another version of the scheme; compiling them "
                    "again (run 'garrison db import' to refresh the database)",
                    self.db.path,
                    name,
                )
            cached = self._schemes[name] = _Keys(scheme, stored)
        return cached

    def _load_profiles(self) -> dict[int, _Profile]:
        out: dict[int, _Profile] = {}
        for pid, (source, status, severity) in self.db.profiles().items():
            not_affected = status == NOT_AFFECTED
            out[pid] = (
                source,
                severity,
                _STATUSES.get(status),
                not_affected,
                bool(status) and not not_affected and status != "fixed",
                OS_SOURCE_PRECEDENCE.get(source, _OTHER_OS_SOURCE),
            )
        self._profiles = out
        return out

    def _load_entries(self, need: dict[str, set[str]]) -> None:
        """Rows become entries as they are; the forms of their ranges are decoded once per id
        (compiled from the stored text where they are not stored, see :class:`_Keys`); the listed
        and fixed versions are decoded only for the rare entries whose ``listed`` is not empty."""
        profiles = self._profiles if self._profiles is not None else self._load_profiles()
        known = self._entries
        for eco, names in need.items():
            rows = self.db.affected_rows(eco, sorted(names))
            for name in names:
                known[(eco, name)] = _NO_ENTRIES  # most names are named by no advisory
            if not rows:
                continue
            keys = self._scheme_keys(eco)
            compiled = keys.compiled if keys is not None else {}
            pending: dict[int, tuple[str, str]] = {}  # forms not decoded yet -> an entry naming it
            current: str | None = None
            entries: list[_Entry] = []
            for package, vuln_id, pid, url, form, extra in rows:
                if package != current:
                    current = package
                    entries = []
                    known[(eco, package)] = entries
                profile = profiles.get(pid)
                if profile is None:
                    raise self._inconsistent(f"entry {vuln_id} {eco}/{package} has no profile {pid}")
                source, severity, status, not_affected, status_always, precedence = profile
                always = status_always and form == 0
                if always or not_affected:
                    form = 0  # never evaluated
                elif form not in compiled and form not in pending:
                    pending[form] = (vuln_id, package)
                if extra is None:
                    versions, fixed = _NO_VERSIONS, ()
                else:
                    listed, fixed_list = json.loads(extra)
                    versions, fixed = frozenset(listed), tuple(fixed_list)
                entries.append(
                    _Entry(
                        package,
                        vuln_id,
                        source,
                        url,
                        severity,
                        form,
                        versions,
                        fixed,
                        always,
                        not_affected,
                        precedence,
                        status,
                    )
                )
            if pending and keys is not None:
                self._load_forms(eco, keys, pending)

    def _load_forms(self, eco: str, keys: _Keys, pending: dict[int, tuple[str, str]]) -> None:
        compiled = keys.compiled
        texts: list[tuple[int, str]] = []
        for fid, value in self.db.range_forms(list(pending), keys.stored):
            if isinstance(value, bytes):
                try:
                    compiled[fid] = decode_form(value)
                except (ValueError, EOFError, TypeError) as exc:
                    raise self._inconsistent(f"range form {fid} does not decode ({exc})") from None
            else:
                texts.append((fid, value))
        if texts:  # the texts decoded as one JSON document
            decoded = json.loads("[" + ",".join(t for _f, t in texts) + "]")
            for (fid, _text), ranges in zip(texts, decoded, strict=True):
                vuln_id, package = pending[fid]
                compiled[fid] = form_of(compile_ranges(ranges, keys.key, f"{vuln_id} {eco}/{package}"))

    def _inconsistent(self, what: str) -> DatabaseError:
        return DatabaseError(f"inconsistent database: {what}; {FIX_HINT}", input_name=str(self.db.path))

    def _alias_maps(self, ids: Iterable[str]) -> None:
        missing = sorted(i for i in ids if i not in self._aliases)
        if missing:
            links = self.db.alias_map(missing)
            for vid in missing:
                found = links.get(vid)
                if found is None:
                    self._aliases[vid] = self._related[vid] = _NO_IDS
                else:
                    self._aliases[vid] = found[0] or _NO_IDS
                    self._related[vid] = found[1] or _NO_IDS

    def _load_vulns(self, ids: AbstractSet[str]) -> None:
        """Rows of ``ids``, their aliases and related ids, in one batch per table, so building
        the advisories of one scan costs a handful of queries, not a few per advisory. The alias
        maps of the aliases themselves are not loaded: only those of candidates and primaries are
        read (loading them for every alias was a tenth of a cold match). References and CWEs
        are decoded as one JSON document, only for the rows that have any (most have none)."""
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
        current: str | None = None
        rows: list[tuple[Any, ...]] = []
        fetched = self.db.vulnerability_rows(todo)
        texts = [t for r in fetched for t in (r[6], r[7]) if t is not None]
        lists = iter(json.loads("[" + ",".join(texts) + "]") if texts else ())
        for row in fetched:  # ordered by id
            if row[6] is not None or row[7] is not None:
                refs = tuple(next(lists)) if row[6] is not None else None
                row = (*row[:6], refs, tuple(next(lists)) if row[7] is not None else None)
            if row[0] != current:
                current = row[0]
                rows = vrows[current] = []
            rows.append(row)
        for vuln_id, kind, version, vector, score, source, feed, primary in self.db.severity_rows(todo):
            srows.setdefault(vuln_id, []).append(
                SeverityRow(kind, version, vector, score, source, _label(feed), bool(primary))
            )
        for i in todo:
            self._vrows[i] = vrows.get(i, ())
        self._srows.update(srows)  # only ids that have severities

    # -- evaluation ------------------------------------------------------------------------

    @staticmethod
    def _listed(entry: _Entry, keys: _Keys, version: str, vkey: Any) -> MatchHit | None:
        """A hit through the explicit ``versions`` list (string or key equality)."""
        if version not in entry.versions:
            vkeys = entry.version_keys
            if vkeys is False:
                vkeys = entry.version_keys = _key_set(entry.versions, keys)
            if not isinstance(vkeys, set) or vkey not in vkeys:
                return None
        later = [f for f in entry.fixed if (fk := keys.try_key(f)) is not None and fk > vkey]
        later.sort(key=keys.key)
        return (f"={version}", (later[0],) if later else ())

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
        ecosystems_of: dict[str, list[str]] = {}  # by package type: they depend on nothing else
        for pkg in packages:
            ptype = pkg.type
            version = (pkg.version or "") if ptype in _VERSION_AS_IS else installed_version(pkg)
            if not version:
                continue
            tkey = (ptype, pkg.namespace, pkg.name, pkg.source_name)
            targets = targets_cache.get(tkey)
            if targets is None:
                ecos = ecosystems_of.get(ptype)
                if ecos is None:
                    ecos = ecosystems_of[ptype] = package_ecosystems(pkg, os)
                lookup = package_lookup_name(pkg)
                targets = tuple((eco, normalise_name(eco, lookup)) for eco in ecos)
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
        entries_of = known.get
        for pkg, targets, version in plan:
            cands: list[_Cand] = []
            negatives: list[tuple[int, str]] = []
            is_os = pkg.type in _OS_TYPES
            for target in targets:
                if not entries_of(target):  # most packages are named by no advisory
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
            if len(cands) == 1 and not negatives:
                cand = cands[0]
                out.append(self._build(pkg, version, cand, cand[3], None))
            else:
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
        hits: dict[int, MatchHit | None] = {}  # by form id: entries of one package share most ranges
        forms = keys.compiled
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
            fid = entry.ranges
            if fid in hits:
                hit = hits[fid]
            else:
                hit = None
                for rng in forms.get(fid, ()):
                    if len(rng) == 3:
                        lo, hi, fast = rng
                        if (lo is None or vkey >= lo) and vkey < hi:
                            hit = fast
                            break
                    else:
                        hit = general_hit(rng[0], rng[1], vkey)
                        if hit is not None:
                            break
                hits[fid] = hit
            if hit is None and entry.versions:
                hit = self._listed(entry, keys, version, vkey)
            if hit is not None:
                cands.append((entry, prec, hit[0], hit[1]))
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
        if ids is None:
            vuln = entry.vuln
            if vuln is None:
                vuln = entry.vuln = self._vulnerability(entry.vuln_id, None, entry.source, entry.severity)
        else:
            vuln = self._vulnerability(entry.vuln_id, ids, entry.source, entry.severity)
        status = entry.status
        if status is None:
            status = VulnStatus.FIXED if fixed else VulnStatus.AFFECTED
        elif status is VulnStatus.FIXED and not fixed:
            status = VulnStatus.AFFECTED
        return VulnMatch(  # positional: keywords cost as much again per match
            vuln,
            pkg,
            version,
            fixed if type(fixed) is tuple else tuple(fixed),
            status,
            cand[2],
            entry.source,
            entry.url or (vuln.references[0] if vuln.references else ""),
            entry.package,
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
        related = self._related[primary]
        if related:
            related = related - ids
            if related and not vrows.keys() >= related:
                self._load_vulns(related)
        linked = sorted(related) if related else ()
        own = vrows[primary]
        if len(own) > 1:
            own = sorted(own, key=lambda r: r[1] != source)
        rows: Sequence[tuple[Any, ...]]
        if len(ids) > 1:
            rest = sorted(ids - {primary})
            others = [r for i in rest for r in vrows[i]]
            if len(others) > 1:
                others.sort(key=lambda r: r[1] != "nvd")
            rows = [*own, *others] if own else others
        else:
            rest, others, rows = [], [], own
        # the first non-empty summary, details, published, modified of the rows
        summary = details = published = modified = ""
        for r in rows:
            summary = summary or r[2]
            details = details or r[3]
            published = published or r[4]
            modified = modified or r[5]
            if summary and details and published and modified:
                break
        shown = own or others
        if len(shown) == 1:
            refs = tuple(dict.fromkeys(shown[0][6])) if shown[0][6] else ()
        else:
            refs = tuple(dict.fromkeys(chain.from_iterable(r[6] for r in shown if r[6])))
        cwes = list(dict.fromkeys(chain.from_iterable(r[7] for r in rows if r[7])))
        for i in linked:
            for r in vrows[i]:
                if r[7]:
                    cwes.extend(c for c in r[7] if c not in cwes)
        srows = self._srows
        sev_rows = [s for i in (primary, *rest, *linked) if i in srows for s in srows[i]]
        if sev_rows:
            severity, sev_source = choose(sev_rows, source, vendor_word)
        else:  # the vendor's word alone decides: the same few pairs recur
            chosen = self._words.get((source, vendor_word))
            if chosen is None:
                chosen = self._words[(source, vendor_word)] = choose((), source, vendor_word)
            severity, sev_source = chosen
        vuln = Vulnerability(
            primary,
            tuple(sorted((ids | related) - {primary})),
            summary,
            details,
            severity,
            sev_source,
            cvss_records(sev_rows) if sev_rows else (),
            refs,
            tuple(cwes),
            published,
            modified,
        )
        self._vulns[cache_key] = vuln
        return vuln

