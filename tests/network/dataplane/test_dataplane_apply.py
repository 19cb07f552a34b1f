"""Applying rulesets to the kernel: atomic failure, diffs, set-member updates, quarantine, the agent."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.network.dataplane._dataplane_cluster import DENY_ALL_WEB, ONLY_FRONT, knp, write_yaml

from garrison.network.dataplane import quarantine as q
from garrison.network.dataplane.agent import Agent, build
from garrison.network.dataplane.apply import Applier
from garrison.network.dataplane.compile import ChainDef
from garrison.network.dataplane.harness import Harness
from garrison.network.dataplane.nft import NftError

pytestmark = pytest.mark.slow


def ifaces(h: Harness) -> dict[str, str]:
    return {k: e.iface for k, e in h.endpoints.items()}


def tcp(h: Harness, pairs: list[tuple[str, str]], port: int = 80) -> dict[tuple[str, str], bool]:
    return h.probe(pairs, "TCP", port, timeout=0.3)


PAIRS = [("web/front", "db/pg"), ("web/admin", "db/pg"), ("db/pg", "web/front"), ("db/cache", "web/admin")]


def test_failed_apply_leaves_previous_ruleset(cluster: Harness, tmp_path: Path, inventory_file: Path) -> None:
    assert cluster.nft is not None
    pol = write_yaml(tmp_path / "p.yaml", [ONLY_FRONT])
    rs, _ = build(pol, inventory_file, ifaces(cluster))
    applier = Applier(cluster.nft)
    applier.apply(rs, full=True)
    before = applier.kernel_state()
    assert tcp(cluster, PAIRS) == {PAIRS[0]: True, PAIRS[1]: False, PAIRS[2]: True, PAIRS[3]: True}
    # the next ruleset would open db to admin, but one chain is broken: nothing of it may land
    rs2, _ = build(write_yaml(tmp_path / "p2.yaml", [DENY_ALL_WEB]), inventory_file, ifaces(cluster))
    rs2.chains["p_broken"] = ChainDef("p_broken", ["ip saddr @no_such_set accept"])
    rs2.chains["p_broken"].finish()
    with pytest.raises(NftError, match=r"no_such_set|No such file"):
        applier.apply(rs2, verify=True)
    with pytest.raises(NftError):
        applier.apply(rs2, full=True)
    after = applier.kernel_state()
    assert after.chains == before.chains and after.sets == before.sets and after.maps == before.maps
    assert tcp(cluster, PAIRS) == {PAIRS[0]: True, PAIRS[1]: False, PAIRS[2]: True, PAIRS[3]: True}


def test_diff_rewrites_only_the_changed_policy(cluster: Harness, tmp_path: Path, inventory_file: Path) -> None:
    assert cluster.nft is not None
    pol = write_yaml(tmp_path / "p.yaml", [ONLY_FRONT, DENY_ALL_WEB])
    agent = Agent(pol, inventory_file, cluster.nft, ifaces(cluster))
    agent.applier.remove()
    first = agent.sync()
    assert first.mode == "full"
    assert tcp(cluster, PAIRS) == {PAIRS[0]: True, PAIRS[1]: False, PAIRS[2]: False, PAIRS[3]: False}
    # widen only-front to web/admin as well: one policy chain and one set change, nothing else
    wider = knp(
        "only-front",
        "db",
        {**ONLY_FRONT["spec"], "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}]},
    )  # type: ignore[dict-item]
    write_yaml(pol, [wider, DENY_ALL_WEB])
    res = agent.sync()
    assert res.mode == "diff"
    assert res.changed_chains and all(c.startswith("p_default_db_knp_default_only_front") for c in res.changed_chains)
    assert tcp(cluster, PAIRS) == {PAIRS[0]: True, PAIRS[1]: True, PAIRS[2]: False, PAIRS[3]: False}
    # the kernel read back agrees with memory: a verified apply has nothing left to do
    assert agent.applier.apply(agent.applier.applied, verify=True).mode == "noop"  # type: ignore[arg-type]
    assert agent.sync().mode == "noop"


def test_set_member_change_is_one_fast_transaction(cluster: Harness, tmp_path: Path, inventory_file: Path) -> None:
    assert cluster.nft is not None
    pol = write_yaml(tmp_path / "p.yaml", [ONLY_FRONT])
    agent = Agent(pol, inventory_file, cluster.nft, ifaces(cluster))
    agent.sync()
    assert agent.applier.applied is not None
    front_sets = [s for s in agent.applier.applied.sets.values() if s.elements == frozenset({"10.60.0.2"})]
    assert len(front_sets) == 1
    assert tcp(cluster, [("web/admin", "db/pg")]) == {("web/admin", "db/pg"): False}
    took = agent.applier.update_set(front_sets[0].name, add={"10.60.0.3"})
    assert took < 0.05
    assert tcp(cluster, [("web/admin", "db/pg")]) == {("web/admin", "db/pg"): True}
    assert "10.60.0.3" in agent.applier.kernel_state().sets[front_sets[0].name]
    agent.applier.update_set(front_sets[0].name, remove={"10.60.0.3"})
    assert tcp(cluster, [("web/admin", "db/pg")]) == {("web/admin", "db/pg"): False}


def test_quarantine_isolates_both_ways_and_releases(cluster: Harness, tmp_path: Path, inventory_file: Path) -> None:
    assert cluster.nft is not None
    Applier(cluster.nft).remove()
    pairs = [("web/front", "db/pg"), ("db/pg", "web/front"), ("web/front", "web/admin")]
    assert all(tcp(cluster, pairs).values())
    assert q.quarantine(cluster.nft, "10.60.0.2") is True
    assert q.quarantine(cluster.nft, "10.60.0.2") is False  # idempotent
    assert q.quarantined(cluster.nft) == {"10.60.0.2"}
    assert not any(tcp(cluster, pairs).values())
    assert tcp(cluster, [("db/pg", "web/admin")]) == {("db/pg", "web/admin"): True}  # only that workload
    # survives a full re-programming of the policy table
    Applier(cluster.nft).apply(
        build(write_yaml(tmp_path / "p.yaml", []), inventory_file, ifaces(cluster))[0], full=True
    )
    assert not any(tcp(cluster, pairs).values())
    # the IPv4 entry leaves IPv6 open; quarantining the IPv6 address closes it too
    front6 = cluster.endpoints["web/front"].ip6
    assert all(cluster.probe(pairs, "TCP", 80, family=6).values())
    assert q.quarantine(cluster.nft, front6) is True
    assert q.quarantined(cluster.nft) == {"10.60.0.2", front6}
    assert not any(cluster.probe(pairs, "TCP", 80, timeout=0.3, family=6).values())
    assert q.release(cluster.nft, "10.60.0.2") is True
    assert q.release(cluster.nft, "10.60.0.2") is False
    assert q.release(cluster.nft, front6) is True
    assert all(tcp(cluster, pairs).values()) and all(cluster.probe(pairs, "TCP", 80, family=6).values())


def test_agent_follows_file_changes_and_survives_bad_input(
    cluster: Harness, tmp_path: Path, inventory_file: Path
) -> None:
    assert cluster.nft is not None
    pdir = tmp_path / "policies"
    pdir.mkdir()
    agent = Agent(pdir, inventory_file, cluster.nft, ifaces(cluster))
    agent.applier.remove()
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop, 0.05), daemon=True)
    t.start()
    try:

        def wait_for(cond: object, what: str) -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if callable(cond) and cond():
                    return
                time.sleep(0.05)
            raise AssertionError(f"agent did not {what}")

        wait_for(lambda: agent.syncs >= 1, "sync the empty directory")
        assert tcp(cluster, [("db/pg", "web/front")]) == {("db/pg", "web/front"): True}
        write_yaml(tmp_path / "deny.tmp", [DENY_ALL_WEB]).rename(pdir / "deny.yaml")  # atomic, as a rollout does
        wait_for(lambda: agent.syncs >= 2, "pick up a new policy file")
        assert tcp(cluster, [("db/pg", "web/front")]) == {("db/pg", "web/front"): False}
        (pdir / "bad.yaml").write_text("kind: [unclosed\n")
        wait_for(lambda: agent.errors >= 1, "report the broken file")
        assert tcp(cluster, [("db/pg", "web/front")]) == {("db/pg", "web/front"): False}  # previous ruleset kept
        (pdir / "bad.yaml").unlink()
        (pdir / "deny.yaml").unlink()
        wait_for(lambda: agent.syncs >= 3, "drop the deleted policy")
        assert tcp(cluster, [("db/pg", "web/front")]) == {("db/pg", "web/front"): True}
    finally:
        stop.set()
        t.join(5)
