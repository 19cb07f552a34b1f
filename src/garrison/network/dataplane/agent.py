"""The dataplane agent: keep the kernel's ``inet garrison`` table equal to the policies on disk.

One sync = load the policies and the inventory with the policy engine's loaders, adapt and compile
them, and apply the difference to the kernel in one transaction (:class:`Applier`). :meth:`Agent.run`
repeats a sync whenever a file under the watched paths changes. It polls a cheap signature (path,
size, mtime of every YAML file) instead of using inotify: that needs no extra dependency, also sees
changes made through bind mounts and ConfigMap symlink swaps (which inotify watches on the old
inode miss), and 0.5 s of latency is well inside what a policy rollout tolerates. A sync that fails
(bad YAML, a rejected ruleset) is logged and leaves the previous ruleset in force.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from garrison.core.errors import GarrisonError, InputError
from garrison.network.dataplane.adapter import AdapterResult, from_policy_set
from garrison.network.dataplane.apply import Applier, ApplyResult
from garrison.network.dataplane.compile import DEFAULT_LOG_GROUP, Ruleset, compile_ruleset, update_ruleset
from garrison.network.dataplane.nft import Nft
from garrison.network.inventory import load_inventory, merge_policy_entities
from garrison.network.loader import load_policies

logger = logging.getLogger(__name__)


def load(policies: Path, inventory: Path, ifaces: Mapping[str, str] | None = None) -> AdapterResult:
    """Policies and inventory from YAML, adapted to the dataplane IR; errors raise :class:`InputError`."""
    pset = load_policies(policies)
    if pset.errors:
        raise InputError(str(pset.errors[0]), input_name=str(policies))
    inv = load_inventory(inventory)
    merge_policy_entities(inv, pset.host_endpoints, pset.network_sets)
    return from_policy_set(pset, inv, ifaces)


def build(
    policies: Path, inventory: Path, ifaces: Mapping[str, str] | None = None, log_group: int | None = DEFAULT_LOG_GROUP
) -> tuple[Ruleset, AdapterResult]:
    adapted = load(policies, inventory, ifaces)
    for msg in adapted.skipped:
        logger.warning("%s", msg)
    return compile_ruleset(adapted.data, log_group), adapted


def _signature(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        files = sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")]) if p.is_dir() else [p]
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(out)


class Agent:
    def __init__(
        self,
        policies: Path,
        inventory: Path,
        nft: Nft,
        ifaces: Mapping[str, str] | None = None,
        log_group: int | None = DEFAULT_LOG_GROUP,
    ) -> None:
        self.policies = policies
        self.inventory = inventory
        self.applier = Applier(nft)
        self.ifaces = dict(ifaces or {})
        self.log_group = log_group
        self.last: ApplyResult | None = None
        self.adapted: AdapterResult | None = None
        self.syncs = 0
        self.errors = 0

    def sync(self) -> ApplyResult:
        adapted = load(self.policies, self.inventory, self.ifaces)
        for msg in adapted.skipped:
            logger.warning("%s", msg)
        prev, prev_rs = self.adapted, self.applier.applied
        if prev is not None and prev_rs is not None:
            rs = update_ruleset(prev_rs, prev.data, adapted.data, self.log_group)
        else:
            rs = compile_ruleset(adapted.data, self.log_group)
        self.adapted = adapted
        self.last = self.applier.apply(rs)
        self.syncs += 1
        return self.last

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Sync now, then again after every change under the watched paths, until ``stop`` is set."""
        seen: tuple[tuple[str, int, int], ...] | None = None
        while not stop.is_set():
            sig = _signature([self.policies, self.inventory])
            if sig != seen:
                seen = sig
                try:
                    res = self.sync()
                    logger.info("synced: %s, %d commands in %.1f ms", res.mode, res.commands, res.seconds * 1000)
                except GarrisonError as e:
                    self.errors += 1
                    logger.error("sync failed, previous ruleset stays in force: %s", e)
            stop.wait(interval)
