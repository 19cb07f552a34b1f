"""Flow logs from real traffic: NFLOG packets decoded to the same policy hits the evaluator reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.network.dataplane._dataplane_cluster import ONLY_FRONT, write_yaml

from garrison.model.network import FlowLog
from garrison.network.dataplane.agent import Agent
from garrison.network.dataplane.compile import DEFAULT_LOG_GROUP, RuleRef
from garrison.network.dataplane.flowlog import FlowAggregator, LoggedPacket, NflogReader, decode_prefix, write_jsonl
from garrison.network.dataplane.harness import Harness

pytestmark = pytest.mark.slow


def _key(hit: str) -> str:
    return hit.split("|", 1)[1]  # drop the position index


def test_flow_logs_carry_the_policy_hits(cluster: Harness, tmp_path: Path, inventory_file: Path) -> None:
    assert cluster.nft is not None
    agent = Agent(
        write_yaml(tmp_path / "p.yaml", [ONLY_FRONT]),
        inventory_file,
        cluster.nft,
        {k: e.iface for k, e in cluster.endpoints.items()},
    )
    agent.applier.remove()
    agent.sync()
    assert agent.applier.applied is not None and agent.adapted is not None
    with NflogReader(DEFAULT_LOG_GROUP, cluster.node) as reader:
        reader.read(0)  # nothing stale
        got = cluster.probe([("web/front", "db/pg"), ("web/admin", "db/pg")], "TCP", 5432, timeout=0.3)
        got |= cluster.probe([("web/front", "db/cache")], "UDP", 53, timeout=0.3)
        assert got == {("web/front", "db/pg"): True, ("web/admin", "db/pg"): False, ("web/front", "db/cache"): True}
        assert cluster.probe([("web/front", "db/pg")], "TCP", 5432, timeout=0.3, family=6)[("web/front", "db/pg")]
        packets = reader.read(0.5)
    assert packets and all(p.prefix.startswith("g|") for p in packets)
    agg = FlowAggregator(agent.applier.applied.index, agent.adapted.data.endpoints)
    agg.add(packets)
    out = tmp_path / "flows.jsonl"
    with out.open("w") as fh:
        assert write_jsonl(agg.records(), fh) > 0
    records = [FlowLog.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
    ev = agent.adapted.evaluator
    checked = 0
    for (src, dst), proto, port in [
        (("web/front", "db/pg"), "tcp", 5432),
        (("web/admin", "db/pg"), "tcp", 5432),
        (("web/front", "db/cache"), "udp", 53),
    ]:
        verdict = ev.evaluate(src, dst, proto.upper(), port)
        for reporter in ("src", "dst"):
            want = [_key(str(h)) for h in verdict.hits if h.reporter == reporter]
            mine = [
                r
                for r in records
                if f"{r.source_namespace}/{r.source_name}" == src
                and f"{r.dest_namespace}/{r.dest_name}" == dst
                and r.reporter == reporter
                and r.proto == proto
            ]
            if not want:
                assert not mine
                continue
            assert mine, f"no {reporter} record for {src}->{dst}"
            for r in mine:
                assert [_key(h) for h in r.enforced_policies] == want
                final = [
                    h.action.value
                    for h in verdict.hits
                    if h.reporter == reporter and h.action.value in ("allow", "deny")
                ]
                assert r.action == final[-1]
                assert r.dest_port == port and (r.packets_in or r.packets_out) >= 1
                checked += 1
    denied = [r for r in records if r.source_name == "admin" and r.reporter == "dst"]
    assert denied and all(r.action == "deny" for r in denied)
    assert any(h.endswith("|db/knp.default.only-front|deny|-1") for h in denied[0].enforced_policies)
    assert checked >= 4
    v6 = [r for r in records if r.source_ip == cluster.endpoints["web/front"].ip6 and r.reporter == "dst"]
    assert v6 and v6[0].source_name == "front" and v6[0].dest_name == "pg" and v6[0].action == "allow"


def test_decode_prefix_with_and_without_index() -> None:
    ref = RuleRef(7, "default", "db/knp.default.x", 2, "allow", "ingress")
    assert decode_prefix("g|7|A|default|db/knp.default.x|2", {7: ref}) is ref
    old = decode_prefix("g|9|D|security|block|0", {})
    assert old is not None and (old.tier, old.policy, old.rule_index, old.action) == ("security", "block", 0, "deny")
    assert decode_prefix("something else", {7: ref}) is None
    assert decode_prefix("g|x", {}) is None


def test_aggregator_ignores_garbage_packets() -> None:
    agg = FlowAggregator({}, [])
    agg.add([LoggedPacket("g|1|A|t|p|0", b"\x00" * 10, 0.0), LoggedPacket("junk", b"", 0.0)])
    assert agg.records() == []
