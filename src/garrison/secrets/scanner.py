"""The secret scanner: which files to read, and the secrets in a file's bytes.

``SecretScanner.wants`` decides from the path and size alone (binary and media extensions, lock
files, ``.git`` and ``node_modules``, files over 10 MiB, and the allow rules' paths such as
``usr/share``, as Trivy's secret analyzer does). ``SecretScanner.scan`` skips content with a NUL
byte in its first 8 KiB, runs the keyword prefilter once over the lower-cased bytes, then only
the regexes of rules whose keyword occurs. Candidates pass the rule's and the global allow lists
and the rule's entropy floor; overlapping candidates are reduced to one (a vendor rule beats a
generic one, then the higher severity, then the longer match). Lines are 1-based; the reported
line is the one the secret starts on, redacted as :mod:`garrison.secrets.redact` describes.
"""

from __future__ import annotations

import bisect
import logging
import math
import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from garrison.model import SecretMatch
from garrison.secrets.keywords import KeywordIndex
from garrison.secrets.redact import redact_line
from garrison.secrets.rules import Rule, RuleSet, builtin_rules, load_config

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
#: files smaller than this cannot hold any secret the rules know (Trivy skips them too)
MIN_FILE_SIZE = 10
BINARY_PROBE = 8192
#: a file with more findings than this is cut short (and says so in the log)
MAX_MATCHES_PER_FILE = 1000

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules"})
SKIP_FILES = frozenset(
    {
        "go.mod", "go.sum", "go.work.sum", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock",
        "pnpm-lock.yaml", "bun.lockb", "deno.lock", "Pipfile.lock", "poetry.lock", "uv.lock", "pdm.lock",
        "Gemfile.lock", "Cargo.lock", "composer.lock", "packages.lock.json", "gradle.lockfile",
        "mix.lock", "pubspec.lock", "Podfile.lock", "conan.lock",
    }
)  # fmt: skip
SKIP_EXTENSIONS = frozenset(
    {
        # images, fonts, media
        ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ico", ".icns", ".tif", ".tiff", ".webp", ".svg",
        ".psd", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".pfb", ".mp3", ".mp4", ".m4a", ".avi",
        ".mov", ".mkv", ".wav", ".ogg", ".flac", ".webm",
        # documents
        ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".pdf",
        # archives and packages
        ".zip", ".gz", ".tgz", ".gzip", ".bz2", ".xz", ".lz", ".lz4", ".lzma", ".zst", ".7z", ".rar",
        ".tar", ".deb", ".udeb", ".rpm", ".apk", ".jar", ".war", ".ear", ".whl", ".egg", ".gem",
        ".nupkg", ".iso", ".img", ".qcow2", ".vmdk",
        # compiled code and other binaries
        ".bin", ".socket", ".so", ".a", ".o", ".ko", ".dll", ".exe", ".dylib", ".class", ".pyc",
        ".pyo", ".wasm", ".mo", ".gmo", ".db", ".sqlite", ".sqlite3", ".pack", ".idx", ".dat",
    }
)  # fmt: skip


def normalize_path(path: str) -> str:
    """POSIX path relative to the scanned root: no leading ``/`` or ``./``."""
    norm = path.replace("\\", "/")
    while norm.startswith("./"):
        norm = norm[2:]
    return norm.lstrip("/")


def shannon_entropy(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte (0 for empty or constant data)."""
    n = len(data)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    rule: Rule

    def rank(self) -> tuple[int, int, int, int]:
        return (int(self.rule.generic), -int(self.rule.severity), -(self.end - self.start), self.start)


class SecretScanner:
    """Finds secrets in files. Pass a :class:`RuleSet` (or rules, checked with the built-in
    allow rules); the default is the built-in rule set."""

    def __init__(
        self,
        rules: RuleSet | Sequence[Rule] | None = None,
        *,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        prefilter: str = "auto",
    ) -> None:
        if rules is None:
            ruleset = builtin_rules()
        elif isinstance(rules, RuleSet):
            ruleset = rules
        else:
            builtin = builtin_rules()
            ids = ",".join(r.id for r in rules)
            ruleset = RuleSet(tuple(rules), builtin.allow_rules, f"{builtin.fingerprint}:{ids}")
        self.ruleset = ruleset
        self.max_file_size = max_file_size
        keywords: dict[bytes, int] = {}
        slots = [tuple(keywords.setdefault(kw, len(keywords)) for kw in rule.keywords) for rule in ruleset.rules]
        by_keyword: list[list[int]] = [[] for _ in keywords]
        for index, rule_slots in enumerate(slots):
            for slot in rule_slots:
                by_keyword[slot].append(index)
        self._index = KeywordIndex(list(keywords), prefilter)
        self._rule_slots = tuple(slots)
        self._by_keyword = tuple(tuple(r) for r in by_keyword)
        self._always = tuple(i for i, rule in enumerate(ruleset.rules) if not rule.keywords)

    @classmethod
    def from_config(
        cls, path: str | Path, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE, prefilter: str = "auto"
    ) -> SecretScanner:
        """Built-in rules merged with a ``--secret-config`` file."""
        return cls(load_config(path), max_file_size=max_file_size, prefilter=prefilter)

    @property
    def fingerprint(self) -> str:
        """Identifies everything that can change this scanner's results (for the layer cache)."""
        return f"secrets-1:{self.ruleset.fingerprint}:{self.max_file_size}"

    @property
    def prefilter_backend(self) -> str:
        return self._index.backend

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.ruleset.rules

    def wants(self, path: str, size: int) -> bool:
        """Whether a file at ``path`` of ``size`` bytes is worth reading for secrets."""
        if size < MIN_FILE_SIZE or size > self.max_file_size:
            return False
        norm = normalize_path(path)
        dirname, name = posixpath.split(norm)
        if name in SKIP_FILES or posixpath.splitext(name)[1].lower() in SKIP_EXTENSIONS:
            return False
        if dirname and not SKIP_DIRS.isdisjoint(dirname.split("/")):
            return False
        return not self.ruleset.allows_path(norm)

    def scan(self, path: str, content: bytes) -> list[SecretMatch]:
        """Secrets in ``content`` (the bytes of the file at ``path``), ordered by line."""
        norm = normalize_path(path)
        if len(content) < MIN_FILE_SIZE or b"\0" in content[:BINARY_PROBE]:
            return []
        if self.ruleset.allows_path(norm):
            return []
        hits = self._candidates(norm, content)
        if not hits:
            return []
        kept = _resolve_overlaps(hits)
        if len(kept) > MAX_MATCHES_PER_FILE:
            logger.warning("%s: %d secret matches, reporting the first %d", norm, len(kept), MAX_MATCHES_PER_FILE)
            kept = kept[:MAX_MATCHES_PER_FILE]
        return _to_matches(norm, content, kept, hits)

    def _candidates(self, path: str, content: bytes) -> list[_Hit]:
        found = self._index.find(content.lower())
        selected = set(self._always)
        for slot in found:
            selected.update(self._by_keyword[slot])
        hits: list[_Hit] = []
        for index in sorted(selected):
            rule = self.ruleset.rules[index]
            if rule.path is not None and not rule.path.search(path):
                continue
            if rule.line_scope:
                offsets = sorted(p for slot in self._rule_slots[index] for p in found.get(slot, ()))
                windows = _line_windows(content, offsets)
            else:
                windows = [(0, len(content))]
            rule_hits = [h for lo, hi in windows for h in self._rule_hits(rule, content, lo, hi)]
            if rule_hits and rule.exclude_blocks:
                rule_hits = _outside_blocks(rule, content, rule_hits)
            hits.extend(rule_hits)
        return hits

    def _rule_hits(self, rule: Rule, content: bytes, lo: int, hi: int) -> list[_Hit]:
        found: list[_Hit] = []
        for m in rule.regex.finditer(content, lo, hi):
            start, end = m.span("secret")
            if start < 0:
                continue
            while start < end and content[start] in b" \t\r\n":
                start += 1
            while end > start and content[end - 1] in b" \t\r\n":
                end -= 1
            if end <= start:
                continue
            secret = content[start:end]
            if any(a.search(secret) for a in rule.allow) or self.ruleset.allows_secret(secret):
                continue
            if rule.entropy and shannon_entropy(secret) < rule.entropy:
                continue
            found.append(_Hit(start, end, rule))
        return found


def _outside_blocks(rule: Rule, content: bytes, hits: list[_Hit]) -> list[_Hit]:
    """Drop hits lying wholly inside one of the rule's exclude blocks (e.g. XML comments)."""
    blocks = [m.span() for pattern in rule.exclude_blocks for m in pattern.finditer(content)]
    return [h for h in hits if not any(s <= h.start and h.end <= e for s, e in blocks)]


def _line_windows(content: bytes, offsets: list[int]) -> list[tuple[int, int]]:
    """The lines holding the sorted ``offsets``, adjacent lines merged, as (start, end) spans."""
    windows: list[tuple[int, int]] = []
    hi = -1
    for pos in offsets:
        if pos < hi:
            continue
        lo = content.rfind(b"\n", 0, pos) + 1
        hi = content.find(b"\n", pos)
        if hi == -1:
            hi = len(content)
        if windows and windows[-1][1] >= lo - 1:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def _resolve_overlaps(hits: list[_Hit]) -> list[_Hit]:
    """Keep the best of overlapping candidates; result ordered by offset."""
    starts: list[int] = []
    kept: list[_Hit] = []
    for hit in sorted(hits, key=_Hit.rank):
        i = bisect.bisect_right(starts, hit.start)
        if i > 0 and kept[i - 1].end > hit.start:
            continue
        if i < len(kept) and kept[i].start < hit.end:
            continue
        starts.insert(i, hit.start)
        kept.insert(i, hit)
    return kept


def _to_matches(path: str, content: bytes, kept: list[_Hit], candidates: list[_Hit]) -> list[SecretMatch]:
    spans = sorted({(h.start, h.end) for h in candidates})
    longest = max(e - s for s, e in spans)
    matches: list[SecretMatch] = []
    line = 1
    pos = 0
    for hit in kept:
        line += content.count(b"\n", pos, hit.start)
        pos = hit.start
        line_start = content.rfind(b"\n", 0, hit.start) + 1
        line_end = content.find(b"\n", hit.start)
        if line_end == -1:
            line_end = len(content)
        lo = bisect.bisect_left(spans, (line_start - longest, 0))
        hi = bisect.bisect_left(spans, (line_end, 0))
        others = [s for s in spans[lo:hi] if s[1] > line_start and s != (hit.start, hit.end)]
        redacted = redact_line(content, line_start, line_end, (hit.start, hit.end), others)
        rule = hit.rule
        matches.append(SecretMatch(rule.id, rule.category, rule.title, path, line, redacted))
    matches.sort(key=lambda m: (m.line, m.rule_id))
    return matches
