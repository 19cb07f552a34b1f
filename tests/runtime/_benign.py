"""Benign node activity for the quiet-on-benign-load test and the hour-long soak benchmark.

One round does what a build node or an app node does all day, on the host and in a container:
package-manager queries and an offline install (a locally built .deb with ``dpkg -i`` in the
container, a locally built wheel with ``pip install --no-index`` into a throwaway venv on the
host), a gcc build, a Python byte-compile, git operations, and an HTTP server answering curl,
wget and Python clients. Everything happens in a scratch directory (and a scratch container) and
is removed afterwards; nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tests._containers import RunningContainer

DEB_SCRIPT = r"""
set -eu
d=$(mktemp -d)
mkdir -p "$d/pkg/DEBIAN" "$d/pkg/usr/share/garrison-benign"
printf 'Package: garrison-benign\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: benign\n' > "$d/pkg/DEBIAN/control"
echo hello > "$d/pkg/usr/share/garrison-benign/hello.txt"
dpkg-deb --build "$d/pkg" "$d/garrison-benign.deb" >/dev/null
dpkg -i "$d/garrison-benign.deb" >/dev/null
dpkg -l garrison-benign >/dev/null
dpkg -r garrison-benign >/dev/null
apt-cache policy bash >/dev/null 2>&1 || true
dpkg-query -W -f='${Package}\n' >/dev/null
rm -rf "$d"
"""

CONTAINER_HTTP = r"""
import http.server, threading, urllib.request
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
for _ in range(20):
    urllib.request.urlopen(f"http://127.0.0.1:{srv.server_address[1]}/").read()
srv.shutdown()
"""


def _run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, timeout=300)


def _wheel(dest: Path) -> Path:
    """A minimal pure-Python wheel, written by hand (no build backend needed offline)."""
    name, version = "garrison_benign", "1.0"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: garrison\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "\n".join(record) + "\n")
    return whl


def host_round(work: Path) -> None:
    """One round of benign host activity in ``work`` (emptied afterwards)."""
    work.mkdir(parents=True, exist_ok=True)
    try:
        _run("dpkg-query", "-W", "-f=${Package}\n")
        _run("dpkg", "-l", "bash")
        _run("apt-cache", "policy", "bash")
        # gcc build
        (work / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
        _run("gcc", "-O2", "-o", str(work / "hello"), str(work / "hello.c"))
        _run(str(work / "hello"))
        # python build (byte-compile a package) and an offline wheel install into a throwaway venv
        pkg = work / "pyproj" / "mod"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("def f():\n    return 1\n")
        _run(sys.executable, "-m", "compileall", "-q", str(pkg))
        _run(sys.executable, "-m", "venv", str(work / "venv"))
        _run(str(work / "venv" / "bin" / "pip"), "install", "-q", "--no-index", str(_wheel(work)))
        _run(str(work / "venv" / "bin" / "python"), "-c", "import garrison_benign")
        # git
        repo = work / "repo"
        repo.mkdir()
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
        env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
        _run("git", "init", "-q", cwd=repo, env=env)
        (repo / "a.txt").write_text("a\n")
        _run("git", "add", "a.txt", cwd=repo, env=env)
        _run("git", "commit", "-q", "-m", "a", cwd=repo, env=env)
        _run("git", "checkout", "-q", "-b", "feature", cwd=repo, env=env)
        _run("git", "log", "--oneline", cwd=repo, env=env)
        _run("git", "status", "--short", cwd=repo, env=env)
        # an HTTP server with curl, wget and Python clients
        (work / "www").mkdir()
        (work / "www" / "index.html").write_text("<p>ok</p>\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=work / "www",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 10
            while subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("benign http server did not start")
                time.sleep(0.1)
            for _ in range(10):
                _run("curl", "-sf", "-o", "/dev/null", url)
                _run("wget", "-q", "-O", "/dev/null", url)
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def container_round(c: RunningContainer) -> None:
    """One round of benign activity inside a (Debian) container."""
    c.exec("sh", "-c", DEB_SCRIPT, timeout=300)
    c.exec("python3", "-c", CONTAINER_HTTP, timeout=120)
    c.exec("sh", "-c", "ls -la /etc >/dev/null; cat /etc/os-release >/dev/null; ps aux >/dev/null || true")


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="garrison-benign-"))


def host_loop(seconds: float, marker: int) -> int:
    """Host rounds for ``seconds`` in this process, under audit loginuid ``marker`` (inherited by
    every descendant, so a machine-wide sensor's alerts can be told apart from other activity)."""
    Path("/proc/self/loginuid").write_text(str(marker))
    stop, rounds = time.monotonic() + seconds, 0
    while time.monotonic() < stop:
        host_round(scratch())
        rounds += 1
    return rounds


if __name__ == "__main__":  # python -m tests.runtime._benign SECONDS MARKER: prints the rounds done
    print(host_loop(float(sys.argv[1]), int(sys.argv[2])))
