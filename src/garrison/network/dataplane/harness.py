"""A real, small cluster node in network namespaces: one "node" namespace, one namespace per endpoint.

Each endpoint namespace is joined to the node namespace by a veth pair, routed the way Calico does
it: the workload has its address as a /32 on ``eth0`` and a default route via the link-local
gateway 169.254.1.1; the node has a /32 route per workload through the workload's veth. Neighbour
entries are static on both sides (instead of proxy-ARP), so no ARP round trip can slow or flake a
probe. The nftables table is programmed in the node namespace, where all workload traffic is
forwarded, so the host's own ruleset is never touched.

With ``ip6`` set an endpoint is dual stack: its IPv6 address as a /128 (no duplicate address
detection, so it is usable at once), a default route via the link-local gateway fe80::1, and a
/128 route plus static neighbour on the node, which forwards IPv6 too.

Every endpoint gets real listeners (TCP accept, UDP echo; dual-stack sockets when it has IPv6) on
each of its ports, served by one thread, and a raw SCTP socket that sees SCTP INITs (see :mod:`garrison.network.dataplane.probe`).

Names carry a per-run prefix ``gdp-<pid>-<random>`` so parallel test workers never collide, and
:func:`cleanup_stale` removes namespaces whose owning process is gone (a crashed run). The harness
is a context manager and also registers an ``atexit`` hook, so namespaces go away even on failure.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from garrison.network.dataplane import netns
from garrison.network.dataplane.ir import DataplaneInput
from garrison.network.dataplane.nft import Nft
from garrison.network.dataplane.probe import IPPROTO_SCTP, Probe, run_probes, serve_forever

logger = logging.getLogger(__name__)
PREFIX = "gdp-"
NODE = "@node"  # probe destination key of the node itself (its ``node_ip``)
GATEWAY = "169.254.1.1"
GATEWAY6 = "fe80::1"  # the IPv6 default gateway of every workload (link-local, static neighbour)


@dataclass(slots=True)
class HarnessEndpoint:
    key: str
    ip: str
    ports: list[tuple[str, int]] = field(default_factory=list)  # (PROTO, port)
    ns: str = ""
    iface: str = ""
    ip6: str = ""  # dual stack when set


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces ``<prefix><pid>-...`` whose process no longer exists; returns their names."""
    stale = []
    for name in netns.list_netns(prefix):
        pid_text = name[len(prefix) :].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            stale.append(name)
    netns.delete_netns(stale)
    return stale


class Harness:
    """``with Harness(endpoints) as h:`` builds the namespaces; ``h.nft`` programs the node."""

    def __init__(
        self,
        endpoints: Iterable[HarnessEndpoint],
        prefix: str = PREFIX,
        node_ip: str = "",
        node_ports: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.run_id = f"{prefix}{os.getpid()}-{secrets.token_hex(2)}"
        self.node = f"{self.run_id}-n"
        self.endpoints = {e.key: e for e in endpoints}
        # the node's own address (on its loopback) and services, for host endpoint tests
        self.node_ip = node_ip
        self.node_ports = list(node_ports)
        self.nft: Nft | None = None
        self._sockets: list[socket.socket] = []
        self._sctp: dict[str, socket.socket] = {}
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None
        self._closed = False
        self._prefix = prefix

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> Harness:
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        cleanup_stale(self._prefix)
        eps = list(self.endpoints.values())
        for i, ep in enumerate(eps):
            ep.ns = f"{self.run_id}-{i}"
            ep.iface = ep.iface or f"gv{i}"  # a preset name lets a HostEndpoint's interfaceName name it
        netns.ip_batch([f"netns add {self.node}"] + [f"netns add {ep.ns}" for ep in eps])
        node_cmds = ["link set lo up"] + ([f"addr add {self.node_ip}/32 dev lo"] if self.node_ip else [])
        for i, ep in enumerate(eps):
            node_mac, ep_mac = _mac(0x67, i), _mac(0x65, i)
            node_cmds += [
                f"link add {ep.iface} address {node_mac} type veth peer name eth0 address {ep_mac} netns {ep.ns}",
                f"link set {ep.iface} up",
                f"route add {ep.ip}/32 dev {ep.iface}",
                f"neigh replace {ep.ip} lladdr {ep_mac} dev {ep.iface} nud permanent",
            ]
            if ep.ip6:
                node_cmds += [
                    f"route add {ep.ip6}/128 dev {ep.iface}",
                    f"neigh replace {ep.ip6} lladdr {ep_mac} dev {ep.iface} nud permanent",
                ]
        netns.ip_batch(node_cmds, self.node)
        procs = []
        for i, ep in enumerate(eps):
            cmds = [
                "link set lo up",
                "link set eth0 up",
                f"addr add {ep.ip}/32 dev eth0",
                f"neigh replace {GATEWAY} lladdr {_mac(0x67, i)} dev eth0 nud permanent",
                f"route add {GATEWAY} dev eth0 scope link",
                f"route add default via {GATEWAY} dev eth0",
            ]
            if ep.ip6:
                cmds += [
                    f"addr add {ep.ip6}/128 dev eth0 nodad",
                    f"neigh replace {GATEWAY6} lladdr {_mac(0x67, i)} dev eth0 nud permanent",
                    f"route add ::/0 via {GATEWAY6} dev eth0",
                ]
            procs.append(
                subprocess.Popen(
                    ["ip", "-n", ep.ns, "-batch", "-"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            assert procs[-1].stdin is not None
            procs[-1].stdin.write("\n".join(cmds) + "\n")
            procs[-1].stdin.close()
        for p, ep in zip(procs, eps, strict=True):
            err = p.stderr.read() if p.stderr else ""
            if p.wait() != 0:
                raise netns.NetnsError(f"configuring endpoint {ep.key}: {err.strip()}")
        netns.write_sysctl(self.node, "net.ipv4.ip_forward", "1")
        netns.write_sysctl(self.node, "net.ipv4.conf.all.rp_filter", "0")
        if any(ep.ip6 for ep in eps):
            netns.write_sysctl(self.node, "net.ipv6.conf.all.forwarding", "1")
        self.nft = Nft(self.node)
        node = HarnessEndpoint(NODE, self.node_ip, self.node_ports, ns=self.node)
        for proto, port in sorted(set(self.node_ports)):
            self._sockets.append(_listener(node, proto, port))
        for ep in eps:
            for proto, port in sorted(set(ep.ports)):
                if proto in ("TCP", "UDP"):
                    self._sockets.append(_listener(ep, proto, port))
            if any(proto == "SCTP" for proto, _ in ep.ports):
                self._sctp[ep.ip] = netns.socket_in(ep.ns, socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=serve_forever, args=(self._sockets, self._stop_r), daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        for s in [*self._sockets, *self._sctp.values()]:
            s.close()
        if self.nft is not None:
            self.nft.close()
        netns.delete_netns([self.node] + [ep.ns for ep in self.endpoints.values() if ep.ns])

    # -- use ----------------------------------------------------------------------------------------

    def attach(self, data: DataplaneInput) -> DataplaneInput:
        """The same input with each endpoint's node-side interface filled in from the harness."""
        eps = [
            dataclasses.replace(e, iface=self.endpoints[e.key].iface) if e.key in self.endpoints else e
            for e in data.endpoints
        ]
        return dataclasses.replace(data, endpoints=eps)

    def probe(
        self, pairs: list[tuple[str, str]], protocol: str, port: int, timeout: float = 0.6, family: int = 4
    ) -> dict[tuple[str, str], bool]:
        """Probe every (src key, dst key) pair at once; failed probes are retried once with a longer timeout.

        The key :data:`NODE` stands for the node itself (its ``node_ip`` and services), as either end.

        ``family`` 6 probes the endpoints' IPv6 addresses; for ICMP/ICMPv6, ``port`` is the query type.
        """
        probes = []
        node = HarnessEndpoint(NODE, self.node_ip, ns=self.node)
        for s, d in pairs:
            src, dst = (node if s == NODE else self.endpoints[s]), (node if d == NODE else self.endpoints[d])
            src_ip, dst_ip = (src.ip6, dst.ip6) if family == 6 else (src.ip, dst.ip)
            probes.append(Probe(src.ns, src_ip, dst_ip, protocol.upper(), port))
        got = run_probes(probes, self._sctp, timeout)
        retry = [i for i, ok in enumerate(got) if not ok]
        if retry:
            again = run_probes([probes[i] for i in retry], self._sctp, timeout * 1.5)
            for i, ok in zip(retry, again, strict=True):
                got[i] = ok
        return dict(zip(pairs, got, strict=True))


def _listener(ep: HarnessEndpoint, proto: str, port: int) -> socket.socket:
    """A TCP listener or UDP echo socket on every address of the endpoint (dual-stack when it has IPv6)."""
    kind = socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM
    if ep.ip6:
        s = netns.socket_in(ep.ns, socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        addr: tuple[str, int] = ("::", port)
    else:
        s = netns.socket_in(ep.ns, socket.AF_INET, kind)
        addr = ("0.0.0.0", port)  # noqa: S104 - inside the endpoint's own namespace
    if proto == "TCP":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    if proto == "TCP":
        s.listen(128)
    return s


def _mac(kind: int, i: int) -> str:
    return f"02:{kind:02x}:00:00:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"
