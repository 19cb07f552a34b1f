"""Version generators and batched calls to the real tools that define each ordering.

Oracles: ``dpkg --compare-versions`` (deb), rpm's Lua ``rpm.vercmp`` (rpm), Maven's
``ComparableVersion`` main class (maven), ``Gem::Version`` through ``ruby`` (gem) and the
node-semver copy that ships with npm (npm). Each runs once per batch of comparisons.
"""

from __future__ import annotations

import json
import random
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

MAVEN_JAR = Path("/usr/share/maven/lib/maven-artifact-3.x.jar")
NODE_SEMVER = Path("/usr/lib/node_modules/npm/node_modules/semver")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (apt-get install the Debian package providing it)")
    return path


# -- generators -------------------------------------------------------------------------------


def _pick(rng: random.Random, parts: list[str], lo: int, hi: int, sep: list[str]) -> str:
    out = rng.choice(parts)
    for _ in range(rng.randint(lo, hi)):
        out += rng.choice(sep) + rng.choice(parts)
    return out


def gen_deb(rng: random.Random) -> str:
    up = rng.choice(["0", "1", "2", "10", "01", "9", "1a"])
    up += _pick(
        rng, ["", "0", "1", "2", "00", "10", "a", "b", "Z", "rc1", "~", "~~", "+", "git"], 0, 4, ["", ".", "+", "~"]
    )
    epoch = rng.choice(["", "", "", "0:", "1:", "2:"])
    rev = rng.choice(["", "", "-0", "-1", "-1~bpo1", "-1+deb12u1", "-a", "-1.1", "-~", "-0ubuntu1"])
    return epoch + up + rev


def gen_rpm(rng: random.Random) -> str:
    parts = ["0", "1", "2", "10", "001", "a", "b", "Z", "rc", "git", "~", "^", "~rc1", "^post1", "_", "+"]
    ver = rng.choice(["0", "1", "2", "10"]) + _pick(rng, parts, 0, 4, ["", ".", "_", "+"])
    rel = rng.choice(["1", "2", "10", "1.el9", "1.el9_2", "0.1~rc1", "1^x", "2.fc38", "1a"])
    epoch = rng.choice(["", "", "0:", "1:", "3:"])
    return f"{epoch}{ver}-{rel}"


def gen_maven(rng: random.Random) -> str:
    parts = ["0", "1", "2", "10", "01", "a", "b", "m", "alpha", "beta", "milestone", "rc", "cr", "snapshot",
             "ga", "final", "release", "sp", "x", "foo", ""]  # fmt: skip
    return rng.choice(["0", "1", "2", "1.0"]) + _pick(rng, parts, 0, 4, [".", "-", ""])


def gen_gem(rng: random.Random) -> str:
    parts = ["0", "1", "2", "10", "a", "b", "pre", "rc", "alpha", "Z"]
    out = rng.choice(["0", "1", "2", "10"])
    for _ in range(rng.randint(0, 4)):
        out += "." + rng.choice(parts)
    if rng.random() < 0.2:
        out += "-" + rng.choice(["1", "a", "rc1", "b.2"])
    return out


def gen_semver(rng: random.Random) -> str:
    core = ".".join(str(rng.choice([0, 1, 2, 10])) for _ in range(3))
    if rng.random() < 0.5:
        ids = ["0", "1", "2", "10", "a", "b", "alpha", "beta", "rc", "A", "x-y", "1a"]
        core += "-" + ".".join(rng.choice(ids) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.2:
        core += "+build." + str(rng.randint(0, 9))
    return core


def pairs(
    gen: Callable[[random.Random], str], seed: int, n: int, valid: Callable[[str], bool] = lambda v: True
) -> list[tuple[str, str]]:
    """Random pairs; a third are a version and a small (still valid) edit of it, since near
    misses matter most."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = gen(rng)
        if i % 3 == 0:
            b = a
            while b == a or not valid(b):
                b = gen(rng) if rng.random() < 0.1 else _edit(rng, a)
        else:
            b = gen(rng)
        out.append((a, b))
    return out


def _edit(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text))
    choice = rng.random()
    if choice < 0.4 and text[i].isdigit():
        return text[:i] + str(rng.randint(0, 9)) + text[i + 1 :]
    if choice < 0.7:
        return text + rng.choice([".0", "0", "~1", ".1", "a", "-1", ".a"])
    return text[:i] + text[i + 1 :] if len(text) > 1 else text + "1"


# -- oracles ----------------------------------------------------------------------------------


def dpkg_compare(batch: list[tuple[str, str]]) -> list[int]:
    need("dpkg")
    lines = [
        f"if dpkg --compare-versions {shlex.quote(a)} lt {shlex.quote(b)} 2>/dev/null; then echo -1; "
        f"elif dpkg --compare-versions {shlex.quote(a)} eq {shlex.quote(b)} 2>/dev/null; then echo 0; else echo 1; fi"
        for a, b in batch
    ]
    out = subprocess.run(["bash", "-c", "\n".join(lines)], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


def rpm_compare(batch: list[tuple[str, str]]) -> list[int]:
    need("rpm")
    calls = " ".join(f"t[#t+1] = rpm.vercmp({json.dumps(a)}, {json.dumps(b)})" for a, b in batch)
    lua = f"%{{lua: local t = {{}} {calls} print(table.concat(t, ' ')) }}"
    out = subprocess.run(["rpm", "--eval", lua], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


def maven_compare(versions: list[str]) -> list[int]:
    """Maven's comparison of each version with the next one."""
    need("java")
    if not MAVEN_JAR.exists():
        pytest.fail(f"{MAVEN_JAR} missing (apt-get install maven)")
    cmd = ["java", "-cp", str(MAVEN_JAR), "org.apache.maven.artifact.versioning.ComparableVersion", *versions]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] in ("<", "==", ">"):
            result.append({"<": -1, "==": 0, ">": 1}[words[1]])
    assert len(result) == len(versions) - 1, out[-500:]
    return result


def ruby_compare(batch: list[tuple[str, str]]) -> list[int]:
    need("ruby")
    script = "require 'json'; JSON.parse(STDIN.read).each { |a, b| puts(Gem::Version.new(a) <=> Gem::Version.new(b)) }"
    out = subprocess.run(["ruby", "-e", script], input=json.dumps(batch), capture_output=True, text=True, check=True)
    return [int(x) for x in out.stdout.split()]


def node_semver(requests: list[list[str]]) -> list[object]:
    """``["cmp", a, b]`` -> compare result; ``["sat", v, range]`` -> satisfies; ``["valid", v]``."""
    need("node")
    if not NODE_SEMVER.exists():
        pytest.fail(f"{NODE_SEMVER} missing (npm ships it)")
    script = (
        f"const s = require({json.dumps(str(NODE_SEMVER))});"
        "const reqs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(reqs.map(r => {"
        " try { if (r[0] === 'cmp') return s.compare(r[1], r[2]);"
        " if (r[0] === 'sat') return s.satisfies(r[1], r[2]);"
        " return s.valid(r[1]) !== null; } catch (e) { return 'error'; } })));"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["node", "-e", script], input=json.dumps(requests), capture_output=True, text=True,
                             check=True, cwd=tmp)  # fmt: skip
    result: list[object] = json.loads(out.stdout)
    return result
