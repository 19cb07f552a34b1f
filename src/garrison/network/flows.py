"""Flow logs: Calico-compatible records on disk, aggregation, filtering, and matching to the inventory.

On disk a flow log is JSON lines, one record per line, in the shape Felix's file reporter writes
(``felix/collector/flowlog`` ``JSONOutput``; field list at docs.tigera.io "Flow log data types"):
``start_time``/``end_time`` (UNIX seconds), ``source_*`` and ``dest_*`` (``ip`` or null when
aggregated, ``name`` or ``-`` when aggregated, ``name_aggr``, ``namespace`` or ``-``, ``port`` or
null, ``type`` wep/hep/ns/net, ``labels`` as ``{"labels": ["k=v", ...]}``), ``proto`` (``tcp``,
``udp``, ``sctp``, ``icmp``, ``icmp6`` or a number), ``action`` allow/deny, ``reporter`` src/dst,
``policies`` (``enforced_policies``, ``pending_policies``, ``transit_policies``; the older
``all_policies`` is read as enforced), byte / packet / flow counters. Reading is lenient in the
ways real exports differ (labels as a plain mapping, as the dataplane module writes them; numbers
as strings; missing optional fields) and strict about what a record cannot do without: a
malformed line is an :class:`InputError` naming the file and line number.

Records are :class:`FlowRecord`, the model's :class:`~garrison.model.network.FlowLog` plus the
fields the model leaves out (aggregated names, transit policies, host), so everything that takes a
``FlowLog`` takes these too.

Aggregation follows Felix's ``flowLogsFileAggregationKind*`` levels: ``none`` (0: one record per
5-tuple), ``port`` (1: source ports folded away, Calico's default for allowed flows) and
``workload`` (2: also folds pods of the same workload: names become ``-`` and ``name_aggr`` keeps
the prefix, IPs become null). Counters add up, times widen, labels are intersected, policy lists
are merged in first-seen order.

:class:`Resolver` maps the two ends of a record back to inventory endpoints (``ns/name``, then the
name with its generated suffixes stripped, so ``web-5f449bdbb9-x2k8p`` finds the ``web``
Deployment, then the IP) for the preview, the recommender and ``flows --policies``.

JSON is read with ``orjson`` (already a dependency) because ingest of millions of lines is the
hot path of ``preview`` and ``recommend``.
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import orjson

from garrison.core.errors import ConfigError, InputError
from garrison.model.network import Endpoint, EndpointKind, FlowLog

logger = logging.getLogger(__name__)

AGGREGATIONS = ("none", "port", "workload")
ACTIONS = ("allow", "deny")
REPORTERS = ("src", "dst")
ENDPOINT_TYPES = ("wep", "hep", "ns", "net")
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 4: "ipip", 50: "esp", 58: "icmp6", 132: "sctp"}
PROTO_NUMBERS = {v: k for k, v in PROTO_NAMES.items()} | {"icmpv6": 58, "udplite": 136}
_NONE = ("", "-", None)
_SUFFIX = re.compile(r"-[a-z0-9]{1,10}$")


@dataclass(slots=True)
class FlowRecord(FlowLog):
    """A Calico flow-log record: :class:`FlowLog` plus aggregation names, transit policies and host."""

    source_name_aggr: str = ""
    dest_name_aggr: str = ""
    transit_policies: list[str] = field(default_factory=list)
    host: str = ""

    @property
    def proto_number(self) -> int:
        return proto_number(self.proto)

    def to_calico(self) -> dict[str, Any]:
        """The record in Felix's JSON shape (nulls where Felix writes nulls)."""
        return {
            "start_time": self.start_time, "end_time": self.end_time,
            "source_ip": self.source_ip or None, "source_name": self.source_name or "-",
            "source_name_aggr": self.source_name_aggr or name_aggr(self.source_name, self.source_type, self.source_ip),
            "source_namespace": self.source_namespace or "-", "source_port": self.source_port,
            "source_type": self.source_type, "source_labels": _labels_out(self.source_labels),
            "dest_ip": self.dest_ip or None, "dest_name": self.dest_name or "-",
            "dest_name_aggr": self.dest_name_aggr or name_aggr(self.dest_name, self.dest_type, self.dest_ip),
            "dest_namespace": self.dest_namespace or "-", "dest_port": self.dest_port,
            "dest_type": self.dest_type, "dest_labels": _labels_out(self.dest_labels),
            "dest_domains": list(self.dest_domains) or None,
            "proto": self.proto, "action": self.action, "reporter": self.reporter,
            "policies": {"enforced_policies": list(self.enforced_policies),
                         "pending_policies": list(self.pending_policies),
                         "transit_policies": list(self.transit_policies)},
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "packets_in": self.packets_in,
            "packets_out": self.packets_out, "num_flows": self.num_flows, "host": self.host,
        }

    @classmethod
    def of(cls, log: FlowLog) -> FlowRecord:
        if isinstance(log, FlowRecord):
            return log
        return cls(**{f.name: getattr(log, f.name) for f in fields(FlowLog)})


def proto_number(proto: str | int) -> int:
    if isinstance(proto, int):
        return proto
    word = proto.strip().lower()
    if word in PROTO_NUMBERS:
        return PROTO_NUMBERS[word]
    if word.isdigit() and 0 < int(word) < 256:
        return int(word)
    raise InputError(f"unknown protocol {proto!r}")


def name_aggr(name: str, kind: str, ip: str) -> str:
    """Felix's aggregated name: ``pvt``/``pub`` for network peers, the name otherwise."""
    if kind == "net":
        if not ip:
            return "pvt"
        try:
            return "pvt" if ipaddress.ip_address(ip).is_private else "pub"
        except ValueError:
            return "pvt"
    return name or "-"


def _labels_out(labels: Mapping[str, str]) -> dict[str, list[str]] | None:
    return {"labels": [f"{k}={v}" for k, v in sorted(labels.items())]} if labels else None


# ---------------------------------------------------------------------------------------------- parsing
class _Bad(Exception):
    pass


def _int(obj: Mapping[str, Any], key: str, default: int | None = 0, *, lo: int = 0, hi: int | None = None
         ) -> int | None:
    value = obj.get(key)
    if type(value) is int and value >= lo and (hi is None or value <= hi):
        return value  # the common case, checked first: ingest of millions of lines is the hot path
    if value is None:
        return default
    if isinstance(value, bool):
        raise _Bad(f"{key} must be a number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int):
        raise _Bad(f"{key} must be a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise _Bad(f"{key} out of range: {value}")
    return value


def _str(obj: Mapping[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _Bad(f"{key} must be a string, got {type(value).__name__}")
    return value


def _ip(obj: Mapping[str, Any], key: str) -> str:
    value = _str(obj, key)
    if value in ("", "-"):
        return ""
    text = _canonical_ip(value)
    if text is None:
        raise _Bad(f"{key} is not an IP address: {value!r}")
    return text


@functools.lru_cache(maxsize=1 << 16)
def _canonical_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _labels(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = obj.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping) and set(value) <= {"labels"} and isinstance(value.get("labels"), list | None):
        out: dict[str, str] = {}
        for item in value.get("labels") or []:
            if not isinstance(item, str) or "=" not in item:
                raise _Bad(f"{key}: expected 'key=value' strings, got {item!r}")
            k, _, v = item.partition("=")
            out[k] = v
        return out
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    raise _Bad(f"{key} must be {{'labels': [...]}} or a mapping")


def _str_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad(f"{key} must be a list of strings")
    return list(value)


def parse_record(obj: Any) -> FlowRecord:
    """Validate one decoded JSON object as a flow-log record (raises ``InputError`` without location)."""
    try:
        return _parse(obj)
    except _Bad as bad:
        raise InputError(str(bad)) from None


def _parse(obj: Any) -> FlowRecord:
    if not isinstance(obj, Mapping):
        raise _Bad(f"expected a JSON object, got {type(obj).__name__}")
    proto_raw = obj.get("proto")
    if isinstance(proto_raw, int) and not isinstance(proto_raw, bool):
        proto_raw = PROTO_NAMES.get(proto_raw, str(proto_raw))
    if not isinstance(proto_raw, str) or not proto_raw:
        raise _Bad("proto is missing")
    try:
        proto = PROTO_NAMES.get(proto_number(proto_raw), proto_raw.lower())
    except InputError as err:
        raise _Bad(str(err)) from None
    action = _str(obj, "action").lower()
    if action not in ACTIONS:
        raise _Bad(f"action must be allow or deny, got {obj.get('action')!r}")
    reporter = _str(obj, "reporter", "dst").lower()
    if reporter not in REPORTERS:
        raise _Bad(f"reporter must be src or dst, got {obj.get('reporter')!r}")
    types = []
    for side in ("source", "dest"):
        kind = _str(obj, f"{side}_type", "wep") or "wep"
        if kind not in ENDPOINT_TYPES:
            raise _Bad(f"{side}_type must be one of {', '.join(ENDPOINT_TYPES)}, got {kind!r}")
        types.append(kind)
    policies = obj.get("policies") or {}
    if not isinstance(policies, Mapping):
        raise _Bad("policies must be an object")
    enforced = _str_list(policies.get("enforced_policies"), "policies.enforced_policies") or _str_list(
        policies.get("all_policies"), "policies.all_policies")
    rec = FlowRecord(
        start_time=_int(obj, "start_time") or 0, end_time=_int(obj, "end_time") or 0,
        source_name=_name(_str(obj, "source_name")), source_namespace=_name(_str(obj, "source_namespace")),
        source_ip=_ip(obj, "source_ip"),
        dest_name=_name(_str(obj, "dest_name")), dest_namespace=_name(_str(obj, "dest_namespace")),
        dest_ip=_ip(obj, "dest_ip"), dest_port=_int(obj, "dest_port", None, hi=65535),
        proto=proto, action=action, reporter=reporter, source_port=_int(obj, "source_port", None, hi=65535),
        source_type=types[0], dest_type=types[1],
        source_labels=_labels(obj, "source_labels"), dest_labels=_labels(obj, "dest_labels"),
        dest_domains=_str_list(obj.get("dest_domains"), "dest_domains"),
        bytes_in=_int(obj, "bytes_in") or 0, bytes_out=_int(obj, "bytes_out") or 0,
        packets_in=_int(obj, "packets_in") or 0, packets_out=_int(obj, "packets_out") or 0,
        num_flows=_int(obj, "num_flows", 1) or 0,
        enforced_policies=enforced,
        pending_policies=_str_list(policies.get("pending_policies"), "policies.pending_policies"),
        source_name_aggr=_name(_str(obj, "source_name_aggr")), dest_name_aggr=_name(_str(obj, "dest_name_aggr")),
        transit_policies=_str_list(policies.get("transit_policies"), "policies.transit_policies"),
        host=_str(obj, "host"),
    )
    if not (rec.source_name or rec.source_ip or rec.source_name_aggr):
        raise _Bad("the source has neither name, name_aggr nor IP")
    if not (rec.dest_name or rec.dest_ip or rec.dest_name_aggr or rec.dest_domains):
        raise _Bad("the destination has neither name, name_aggr, IP nor domain")
    return rec


def _name(value: str) -> str:
    return "" if value == "-" else value


def _open(path: Path) -> IO[bytes]:
    fh: IO[bytes] = path.open("rb")
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def read_flows(paths: Iterable[str | Path]) -> Iterator[FlowRecord]:
    """Stream the records of JSON-lines flow logs (plain or gzip); a bad line raises with its number."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise InputError("is a directory, expected a JSON-lines flow log", input_name=str(path))
        try:
            fh = _open(path)
        except OSError as err:
            raise InputError(f"cannot read: {err.strerror or err}", input_name=str(path)) from err
        with fh:
            try:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = orjson.loads(line)
                    except orjson.JSONDecodeError as err:
                        raise InputError(f"line {n}: not valid JSON ({err.args[0] if err.args else err})",
                                         input_name=str(path)) from None
                    try:
                        yield _parse(obj)
                    except _Bad as bad:
                        raise InputError(f"line {n}: {bad}", input_name=str(path)) from None
            except (OSError, EOFError, gzip.BadGzipFile) as err:
                raise InputError(f"cannot read: {err}", input_name=str(path)) from err


def write_flows(records: Iterable[FlowLog], fh: IO[str]) -> int:
    """Write records as Calico JSON lines; returns how many."""
    n = 0
    for r in records:
        fh.write(orjson.dumps(FlowRecord.of(r).to_calico()).decode() + "\n")
        n += 1
    return n


# ---------------------------------------------------------------------------------------------- filter
FILTER_KEYS = ("ns", "src_ns", "dst_ns", "src", "dst", "action", "reporter", "proto", "port", "policy")


def parse_filter(specs: Iterable[str]) -> dict[str, set[str]]:
    """``ns=shop,action=deny`` (repeatable; the same key twice means either value)."""
    out: dict[str, set[str]] = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key = key.strip().lower().replace("-", "_")
            if not sep or key not in FILTER_KEYS or not value.strip():
                raise ConfigError(f"--filter {part!r}: expected KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}")
            out.setdefault(key, set()).add(value.strip())
    return out


def matches(rec: FlowRecord, flt: Mapping[str, set[str]]) -> bool:
    for key, values in flt.items():
        if key == "ns":
            ok = rec.source_namespace in values or rec.dest_namespace in values
        elif key == "src_ns":
            ok = rec.source_namespace in values
        elif key == "dst_ns":
            ok = rec.dest_namespace in values
        elif key == "src":
            ok = bool({endpoint_label(rec, "source"), rec.source_ip} & values)
        elif key == "dst":
            ok = bool({endpoint_label(rec, "dest"), rec.dest_ip} & values)
        elif key == "action":
            ok = rec.action in {v.lower() for v in values}
        elif key == "reporter":
            ok = rec.reporter in {v.lower() for v in values}
        elif key == "proto":
            ok = rec.proto in {v.lower() for v in values}
        elif key == "port":
            ok = str(rec.dest_port) in values
        else:
            ok = any(v in p for p in rec.enforced_policies + rec.pending_policies for v in values)
        if not ok:
            return False
    return True


def endpoint_label(rec: FlowLog, side: str) -> str:
    """``ns/name`` (or ``ns/name_aggr``, or the IP, or ``pvt``/``pub``) for display."""
    r = FlowRecord.of(rec)
    if side == "source":
        ns, name, aggr, ip = r.source_namespace, r.source_name, r.source_name_aggr, r.source_ip
    else:
        ns, name, aggr, ip = r.dest_namespace, r.dest_name, r.dest_name_aggr, r.dest_ip
    label = name or aggr or ip
    if side == "dest" and not label and r.dest_domains:
        label = r.dest_domains[0]
    return f"{ns}/{label}" if ns else label


# ---------------------------------------------------------------------------------------------- aggregation
def aggregate(records: Iterable[FlowRecord], level: str) -> list[FlowRecord]:
    """Fold records at a Felix aggregation level (``none``, ``port``, ``workload``)."""
    if level not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {level!r}; choose from {', '.join(AGGREGATIONS)}")
    out: dict[tuple[Any, ...], FlowRecord] = {}
    for r in records:
        src_aggr = r.source_name_aggr or name_aggr(r.source_name, r.source_type, r.source_ip)
        dst_aggr = r.dest_name_aggr or name_aggr(r.dest_name, r.dest_type, r.dest_ip)
        sport = r.source_port if level == "none" else None
        if level == "workload":
            sname, dname, sip, dip = "", "", "", ""
        else:
            sname, dname, sip, dip = r.source_name, r.dest_name, r.source_ip, r.dest_ip
        key = (r.source_type, r.source_namespace, sname, src_aggr, sip, sport, r.dest_type, r.dest_namespace,
               dname, dst_aggr, dip, r.dest_port, r.proto, r.action, r.reporter, tuple(r.enforced_policies))
        acc = out.get(key)
        if acc is None:
            out[key] = FlowRecord(
                start_time=r.start_time, end_time=r.end_time, source_name=sname, source_namespace=r.source_namespace,
                source_ip=sip, dest_name=dname, dest_namespace=r.dest_namespace, dest_ip=dip, dest_port=r.dest_port,
                proto=r.proto, action=r.action, reporter=r.reporter, source_port=sport, source_type=r.source_type,
                dest_type=r.dest_type, source_labels=dict(r.source_labels), dest_labels=dict(r.dest_labels),
                dest_domains=list(r.dest_domains), bytes_in=r.bytes_in, bytes_out=r.bytes_out,
                packets_in=r.packets_in, packets_out=r.packets_out, num_flows=r.num_flows,
                enforced_policies=list(r.enforced_policies), pending_policies=list(r.pending_policies),
                source_name_aggr=src_aggr, dest_name_aggr=dst_aggr, transit_policies=list(r.transit_policies),
                host=r.host)
            continue
        acc.start_time = min(acc.start_time, r.start_time)
        acc.end_time = max(acc.end_time, r.end_time)
        acc.bytes_in += r.bytes_in
        acc.bytes_out += r.bytes_out
        acc.packets_in += r.packets_in
        acc.packets_out += r.packets_out
        acc.num_flows += r.num_flows
        if acc.source_labels != r.source_labels:
            acc.source_labels = {k: v for k, v in acc.source_labels.items() if r.source_labels.get(k) == v}
        if acc.dest_labels != r.dest_labels:
            acc.dest_labels = {k: v for k, v in acc.dest_labels.items() if r.dest_labels.get(k) == v}
        for src_list, dst_list in ((r.pending_policies, acc.pending_policies), (r.dest_domains, acc.dest_domains),
                                   (r.transit_policies, acc.transit_policies)):
            for item in src_list:
                if item not in dst_list:
                    dst_list.append(item)
        if acc.host != r.host:
            acc.host = "-"
    return list(out.values())


# ---------------------------------------------------------------------------------------------- resolution
@dataclass(slots=True, frozen=True)
class Peer:
    """One end of a flow matched against the inventory.

    ``ref`` is what the evaluator takes: the inventory key (``ns/name`` or a host endpoint's name),
    an IP or a domain; ``endpoint`` is the inventory endpoint (``None`` outside it); ``known`` is
    False for a workload or host the flow names but the inventory lacks (reported by callers).
    """

    ref: str
    endpoint: Endpoint | None
    known: bool
    display: str
    fallback: Endpoint | None = None

    @property
    def evaluator_ref(self) -> str | Endpoint:
        return self.fallback if self.fallback is not None else self.ref


class Resolver:
    """Match flow-record ends to inventory endpoints (by name, workload prefix, then IP)."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints = list(endpoints)
        self.by_key = {e.key: e for e in self.endpoints}
        self.by_ip: dict[str, Endpoint] = {}
        for e in self.endpoints:
            for ip in e.ips:
                self.by_ip.setdefault(ip, e)
        self._cache: dict[tuple[str, str, str, str, str], Peer | None] = {}

    def resolve(self, rec: FlowRecord, side: str) -> Peer | None:
        """The peer on ``side`` (``source`` or ``dest``); ``None`` when nothing identifies it (aggregated net)."""
        if side == "source":
            kind, ns, name, aggr, ip = (rec.source_type, rec.source_namespace, rec.source_name, rec.source_name_aggr,
                                        rec.source_ip)
            labels = rec.source_labels
        else:
            kind, ns, name, aggr, ip = rec.dest_type, rec.dest_namespace, rec.dest_name, rec.dest_name_aggr, rec.dest_ip
            labels = rec.dest_labels
        ck = (kind, ns, name, aggr, ip)
        if ck in self._cache:
            return self._cache[ck]
        peer = self._resolve(kind, ns, name, aggr, ip, labels)
        if side == "dest" and peer is None and rec.dest_domains:
            dom = rec.dest_domains[0].lower().rstrip(".")
            peer = Peer(dom, None, True, dom)
        if not labels or (peer is not None and peer.known):
            self._cache[ck] = peer
        return peer

    def _lookup(self, ns: str, name: str) -> Endpoint | None:
        for cand in _candidates(name):
            found = self.by_key.get(f"{ns}/{cand}" if ns else cand)
            if found is not None:
                return found
        return None

    def _resolve(self, kind: str, ns: str, name: str, aggr: str, ip: str, labels: Mapping[str, str]) -> Peer | None:
        if kind in ("wep", "hep"):
            found = self._lookup(ns, name) if name else None
            if found is None and aggr and aggr not in ("pvt", "pub"):
                found = self._lookup(ns, aggr.rstrip("*").rstrip("-"))
            if found is None and ip:
                found = self.by_ip.get(ip)
            if found is not None:
                return Peer(found.key, found, True, found.key)
            label = name or aggr or ip
            display = f"{ns}/{label}" if ns else label
            fallback = None
            if kind == "wep" and ns and (name or aggr):
                from garrison.network.inventory import calico_labels

                ep_name = name or aggr.rstrip("*").rstrip("-")
                fallback = Endpoint(name=ep_name, namespace=ns, kind=EndpointKind.POD,
                                    labels=calico_labels(labels, ns, {"kubernetes.io/metadata.name": ns}, ""),
                                    ips=(ip,) if ip else ())
            elif not ip:
                return Peer(display, None, False, display, Endpoint(name=display, kind=EndpointKind.EXTERNAL))
            return Peer(ip or display, None, False, display, fallback)
        if ip:
            found = self.by_ip.get(ip)
            if found is not None:
                return Peer(found.key, found, True, found.key)
            return Peer(ip, None, True, ip)
        if kind == "ns" and name:
            display = f"{ns}/{name}" if ns else name
            return Peer(display, None, False, display, Endpoint(name=display, kind=EndpointKind.NETWORK_SET))
        return None


def _candidates(name: str) -> list[str]:
    """The name, then with up to two generated suffixes removed (pod -> ReplicaSet -> Deployment)."""
    out = [name]
    cur = name
    for _ in range(2):
        stripped = _SUFFIX.sub("", cur)
        if stripped == cur or not stripped:
            break
        out.append(stripped)
        cur = stripped
    return out
