"""Flow logs: Calico JSON records, bad lines, aggregation, filters, inventory matching, ``policy flows``."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import ConfigError, InputError
from garrison.model.network import FlowLog
from garrison.network.flows import (
    FlowRecord,
    Resolver,
    aggregate,
    matches,
    parse_filter,
    parse_record,
    read_flows,
    write_flows,
)
from garrison.network.inventory import load_inventory

ASSETS = Path(__file__).parent / "assets"
INVENTORY = ASSETS / "inventory.yaml"
POLICIES = ASSETS / "policies.yaml"

# The policy group's registration of these commands belongs to cli/policy.py; the tests register
# them on the group themselves and go through ``main`` so exit codes and error lines are the real ones.
_SCRIPT = """
import sys
from garrison.cli import policy, policy_flows as pf
from garrison.cli.main import main
names = {c.name for c in policy.app.registered_commands}
for name, fn in (("flows", pf.flows_cmd), ("preview", pf.preview_cmd), ("recommend", pf.recommend_cmd),
                 ("promote", pf.promote_cmd)):
    if name not in names:
        policy.app.command(name)(fn)
main(["policy", *sys.argv[1:]])
"""


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", _SCRIPT, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def record(src: str, dst: str, proto: str = "tcp", port: int | None = 80, *, action: str = "allow",
           reporter: str = "dst", src_ip: str = "", dst_ip: str = "", num_flows: int = 1, sport: int | None = 40000,
           **extra: Any) -> dict[str, Any]:
    """A Calico flow-log JSON object; ``src``/``dst`` are ``ns/name`` or an IP (a network peer)."""
    def side(ref: str, ip: str) -> dict[str, Any]:
        if "/" in ref:
            ns, name = ref.split("/", 1)
            return {"ip": ip or None, "name": name, "name_aggr": name, "namespace": ns, "type": "wep"}
        return {"ip": ref, "name": "-", "name_aggr": "pvt", "namespace": "-", "type": "net"}

    out: dict[str, Any] = {"start_time": 1_700_000_000, "end_time": 1_700_000_300, "proto": proto,
                           "action": action, "reporter": reporter, "dest_port": port, "source_port": sport,
                           "num_flows": num_flows, "bytes_in": 10, "bytes_out": 20, "packets_in": 1,
                           "packets_out": 2, "policies": {"enforced_policies": [], "pending_policies": []}}
    for prefix, ref, ip in (("source", src, src_ip), ("dest", dst, dst_ip)):
        for k, v in side(ref, ip).items():
            out[f"{prefix}_{k}"] = v
    out.update(extra)
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


CALICO_LINE = {
    "start_time": 1597166083, "end_time": 1597166383, "source_ip": None, "source_name": "-",
    "source_name_aggr": "details-v1-5f449bdbb9-*", "source_namespace": "default", "nat_outgoing_ports": None,
    "source_port": None, "source_type": "wep", "source_labels": {"labels": ["app=details", "version=v1"]},
    "dest_ip": None, "dest_name": "-", "dest_name_aggr": "productpage-v1-6987489c74-*", "dest_namespace": "default",
    "dest_port": 9080, "dest_type": "wep", "dest_labels": {"labels": ["app=productpage", "version=v1"]},
    "dest_service_namespace": "-", "dest_service_name": "-", "dest_service_port": "-", "dest_service_port_num": None,
    "dest_domains": None, "proto": "tcp", "action": "allow", "reporter": "dst",
    "policies": {"enforced_policies": ["0|__PROFILE__|__PROFILE__.kns.default|allow|0"], "pending_policies": [],
                 "transit_policies": []},
    "bytes_in": 18478, "bytes_out": 8768, "num_flows": 2, "num_flows_started": 0, "num_flows_completed": 1,
    "packets_in": 42, "packets_out": 31, "http_requests_allowed_in": 0, "http_requests_denied_in": 0,
    "process_name": "-", "num_process_names": 0, "host": "node-1",
}


def test_calico_record_fields_are_read() -> None:
    rec = parse_record(CALICO_LINE)
    assert rec.source_name == "" and rec.source_name_aggr == "details-v1-5f449bdbb9-*"
    assert rec.source_labels == {"app": "details", "version": "v1"}
    assert rec.dest_port == 9080 and rec.proto == "tcp" and rec.action == "allow" and rec.reporter == "dst"
    assert rec.enforced_policies == ["0|__PROFILE__|__PROFILE__.kns.default|allow|0"]
    assert (rec.bytes_in, rec.bytes_out, rec.packets_in, rec.packets_out, rec.num_flows) == (18478, 8768, 42, 31, 2)
    assert rec.host == "node-1"


def test_write_then_read_round_trips_in_calico_shape(tmp_path: Path) -> None:
    rec = parse_record(CALICO_LINE)
    buf = io.StringIO()
    assert write_flows([rec], buf) == 1
    line = json.loads(buf.getvalue())
    assert line["source_labels"] == {"labels": ["app=details", "version=v1"]}
    assert line["source_name"] == "-" and line["source_ip"] is None and line["dest_domains"] is None
    assert set(line["policies"]) == {"enforced_policies", "pending_policies", "transit_policies"}
    path = tmp_path / "f.jsonl"
    path.write_text(buf.getvalue())
    assert list(read_flows([path])) == [rec]


def test_all_policies_and_dataplane_shape_are_accepted(tmp_path: Path) -> None:
    old = dict(CALICO_LINE, policies={"all_policies": ["0|t|t.p|deny|1"]})
    assert parse_record(old).enforced_policies == ["0|t|t.p|deny|1"]
    # the model's own to_dict (labels as a mapping), which the nftables dataplane writes
    log = FlowLog(1, 2, "web", "shop", "10.1.0.10", "api", "shop", "10.1.0.11", 9090, "tcp", "allow", "src",
                  source_labels={"app": "web"}, enforced_policies=["0|default|shop/default.a|allow|0"])
    rec = parse_record(log.to_dict())
    assert rec.source_labels == {"app": "web"} and rec.enforced_policies == log.enforced_policies
    assert FlowRecord.of(log).dest_ip == "10.1.0.11"


def test_gzip_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "flows.log.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps(CALICO_LINE) + "\n\n")
    assert len(list(read_flows([path]))) == 1


@pytest.mark.parametrize(("line", "message"), [
    pytest.param("{not json", "not valid JSON", id="json"),
    pytest.param(json.dumps(dict(CALICO_LINE, proto=None)), "proto is missing", id="no-proto"),
    pytest.param(json.dumps(dict(CALICO_LINE, proto="gre-ish")), "unknown protocol", id="bad-proto"),
    pytest.param(json.dumps(dict(CALICO_LINE, action="maybe")), "action must be allow or deny", id="action"),
    pytest.param(json.dumps(dict(CALICO_LINE, reporter="both")), "reporter must be src or dst", id="reporter"),
    pytest.param(json.dumps(dict(CALICO_LINE, dest_port=70000)), "dest_port out of range", id="port"),
    pytest.param(json.dumps(dict(CALICO_LINE, source_ip="10.0.0.300")), "source_ip is not an IP", id="ip"),
    pytest.param(json.dumps(dict(CALICO_LINE, source_labels={"labels": ["novalue"]})), "key=value", id="labels"),
    pytest.param(json.dumps(dict(CALICO_LINE, source_type="pod")), "source_type must be one of", id="type"),
    pytest.param(json.dumps(dict(CALICO_LINE, bytes_in=True)), "bytes_in must be a number", id="bool"),
    pytest.param("[1, 2]", "expected a JSON object", id="array"),
    pytest.param(json.dumps(dict(CALICO_LINE, source_name="-", source_name_aggr="-")), "source has neither",
                 id="anonymous"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_text(json.dumps(CALICO_LINE) + "\n\n" + line + "\n")
    with pytest.raises(InputError) as err:
        list(read_flows([path]))
    text = str(err.value)
    assert text.startswith(f"{path}: line 3: ") and message in text and "\n" not in text


def test_missing_file_and_directory_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        list(read_flows([tmp_path / "nope.jsonl"]))
    with pytest.raises(InputError, match="is a directory"):
        list(read_flows([tmp_path]))


def test_aggregation_levels_fold_like_felix() -> None:
    recs = [parse_record(record("shop/web-6d4cf56db6-abcde", "shop/api", sport=40000 + i, src_ip="10.1.0.1",
                                source_name_aggr="web-6d4cf56db6-*", num_flows=1)) for i in range(1, 4)]
    recs += [parse_record(record("shop/web-6d4cf56db6-vwxyz", "shop/api", sport=50000, src_ip="10.1.0.9",
                                 source_name_aggr="web-6d4cf56db6-*"))]
    assert len(aggregate(recs, "none")) == 4
    assert len(aggregate(recs, "port")) == 2  # two pods, source ports folded
    (one,) = aggregate(recs, "workload")
    assert one.num_flows == 4 and one.source_name == "" and one.source_ip == "" and one.source_port is None
    assert one.source_name_aggr == "web-6d4cf56db6-*" and one.bytes_in == 40
    with pytest.raises(ConfigError):
        aggregate(recs, "pod")


def test_aggregation_intersects_labels_and_keeps_actions_apart() -> None:
    a = parse_record(record("shop/a", "shop/b", source_labels={"labels": ["app=a", "v=1"]}))
    b = parse_record(record("shop/a", "shop/b", sport=1, source_labels={"labels": ["app=a", "v=2"]}))
    c = parse_record(record("shop/a", "shop/b", action="deny"))
    out = aggregate([a, b, c], "port")
    assert len(out) == 2
    assert next(r for r in out if r.action == "allow").source_labels == {"app": "a"}


def test_filters() -> None:
    rec = parse_record(record("shop/web", "ops/db", port=5432, action="deny"))
    assert matches(rec, parse_filter(["ns=ops,action=deny"]))
    assert matches(rec, parse_filter(["src=shop/web", "port=5432"]))
    assert not matches(rec, parse_filter(["ns=shop", "action=allow"]))
    assert matches(rec, parse_filter(["action=allow,action=deny"]))
    for bad in ("color=red", "ns", "ns="):
        with pytest.raises(ConfigError, match="--filter"):
            parse_filter([bad])


def test_resolver_finds_workloads_by_name_suffix_ip_and_reports_unknown() -> None:
    inv = load_inventory(INVENTORY)
    res = Resolver(inv.endpoints)
    # pod of the "db" Deployment: both generated suffixes are stripped
    peer = res.resolve(parse_record(record("shop/api", "shop/db-7d9f8c6b5-x2k8p")), "dest")
    assert peer is not None and peer.known and peer.ref == "shop/db"
    peer = res.resolve(parse_record(record("10.1.0.10", "shop/api")), "source")
    assert peer is not None and peer.known and peer.ref == "shop/web"  # a "net" IP that is a pod
    peer = res.resolve(parse_record(record("shop/ghost", "shop/api", source_labels={"labels": ["app=g"]})), "source")
    assert peer is not None and not peer.known and peer.fallback is not None
    assert peer.fallback.labels["app"] == "g"
    peer = res.resolve(parse_record(record("203.0.113.9", "shop/api")), "source")
    assert peer is not None and peer.known and peer.ref == "203.0.113.9" and peer.endpoint is None


def test_cli_flows_json_recomputes_missing_hits(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/web", "shop/api", port=9090, src_ip="10.1.0.10", dst_ip="10.1.0.11"),
        record("shop/web", "shop/api", port=9090, sport=40001, src_ip="10.1.0.10", dst_ip="10.1.0.11"),
        record("ops/monitor", "shop/db", port=5432, action="deny",
               policies={"enforced_policies": ["0|default|shop/knp.default.default-deny|deny|-1"]}),
    ])
    res = run_cli("flows", "--flows", path, "--format", "json", "--policies", POLICIES, "--inventory", INVENTORY)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["records"] == 2 and data["summary"]["flows_allowed"] == 2
    assert data["summary"]["flows_denied"] == 1 and data["summary"]["recomputed"] == 1
    web = next(f for f in data["flows"] if f["source_name"] == "web")
    assert web["policies_recomputed"] and web["num_flows"] == 2
    assert any("knp.default.api-from-web|allow" in p for p in web["policies"]["enforced_policies"])
    deny = next(f for f in data["flows"] if f["action"] == "deny")
    assert not deny["policies_recomputed"]
    res = run_cli("flows", "--flows", path, "--filter", "action=deny", "--aggregate", "none")
    assert res.returncode == 0 and "ops/monitor" in res.stdout and "shop/web" not in res.stdout


def test_cli_flows_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(record("a/b", "c/d")) + "\n" + '{"proto": "tcp"\n')
    res = run_cli("flows", "--flows", path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert f"{path}: line 2: not valid JSON" in res.stderr and "Traceback" not in res.stderr
    for args in (["--filter", "colour=red"], ["--aggregate", "pods"], ["--policies", str(POLICIES)]):
        res = run_cli("flows", "--flows", path, *args)
        assert res.returncode == 2 and "Traceback" not in res.stderr, args
    res = run_cli("flows")
    assert res.returncode == 2 and "--flows" in res.stderr


_json = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                     | st.text(max_size=12), lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(st.text(max_size=10), kids, max_size=5), max_leaves=12)
_keys = st.sampled_from([*sorted(CALICO_LINE), "policies", "source_labels"])


@settings(max_examples=300)
@given(st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(_keys, _json, max_size=8).map(lambda d: json.dumps(dict(CALICO_LINE, **d)).encode()),
))
def test_fuzz_flow_parser_only_raises_input_errors(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.jsonl"
    path.write_bytes(data.replace(b"\n", b" ") + b"\n")
    try:
        recs = list(read_flows([path]))
    except InputError as err:
        assert "line 1" in str(err) or "cannot read" in str(err)
        return
    for rec in recs:
        assert rec.action in ("allow", "deny") and rec.reporter in ("src", "dst")
        buf = io.StringIO()
        write_flows([rec], buf)
        assert parse_record(json.loads(buf.getvalue())) == rec
