"""A fake node for the CIS runner: real files with chosen modes and owners under two roots, and a
real process named ``kubelet`` (a copy of bash) whose command line carries kubelet flags."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KUBELET_FLAGS = ("--config=/var/lib/kubelet/config.yaml", "--anonymous-auth=false", "--read-only-port=10255")

GOOD_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
rotateCertificates: true
tlsCipherSuites:
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
"""

BAD_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authorization:
  mode: AlwaysAllow
rotateCertificates: false
tlsCipherSuites:
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  - TLS_RSA_WITH_RC4_128_SHA
"""


@dataclass
class FakeNode:
    good: Path
    bad: Path
    pid: int
    is_root: bool


def _write(root: Path, rel: str, text: str, mode: int, owner: tuple[int, int] | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, *owner)


@pytest.fixture(scope="session")
def fake_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeNode]:
    base = tmp_path_factory.mktemp("cisnode")
    is_root = os.geteuid() == 0
    good, bad = base / "good", base / "bad"
    _write(good, "etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "[Service]\n", 0o600)
    _write(good, "etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n", 0o600)
    _write(good, "var/lib/kubelet/config.yaml", GOOD_CONFIG, 0o600)
    _write(bad, "etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "[Service]\n", 0o644)
    _write(
        bad, "etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n", 0o600, (65534, 65534) if is_root else None
    )
    _write(bad, "var/lib/kubelet/config.yaml", BAD_CONFIG, 0o666)
    binary = base / "bin" / "kubelet"
    binary.parent.mkdir()
    shutil.copy(shutil.which("bash") or "/bin/bash", binary)
    # "sleep; :" keeps bash itself running (a lone command would be exec'd in its place)
    proc = subprocess.Popen([str(binary), "-c", "sleep 600; :", *KUBELET_FLAGS])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "kubelet":
        assert time.monotonic() < deadline, "fake kubelet did not start"
        time.sleep(0.05)
    try:
        yield FakeNode(good=good, bad=bad, pid=proc.pid, is_root=is_root)
    finally:
        proc.kill()
        proc.wait(timeout=10)
