"""``make demo``: scan the bundled sample image against the bundled real advisory records.

Everything is local: the image (demo/sample-image.tar, built from real parts by
demo/build-sample.sh) and the advisories (demo/advisories/, real OSV records and Debian's DSA
list selected by demo/make-advisories.py). The database and outputs go to ./.demo/.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from garrison.cli.main import main as cli


def _run(argv: list[str]) -> int:
    try:
        cli(argv)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    demo = repo / "demo"
    image = demo / "sample-image.tar"
    if not image.is_file():
        sys.exit(f"garrison demo: {image} is missing (run demo/build-sample.sh)")
    out = Path.cwd() / ".demo"
    out.mkdir(exist_ok=True)
    db = out / "garrison.db"
    if db.exists():
        db.unlink()
    os.environ["GARRISON_DB"] = str(db)
    os.environ["GARRISON_CACHE_DIR"] = str(out / "cache")
    print("== garrison db import demo/advisories  (real OSV records and Debian's DSA list, offline)")
    code = _run(["db", "import", str(demo / "advisories")])
    if code:
        sys.exit(code)
    print(f"\n== garrison scan image {image.relative_to(repo)}")
    _run(["scan", "image", str(image)])
    _run(["sbom", str(image), "--format", "cyclonedx", "--output", str(out / "sbom.cdx.json")])
    _run(["scan", "image", str(image), "--format", "sarif", "--output", str(out / "scan.sarif")])
    print(f"\nSBOM: {out / 'sbom.cdx.json'}   SARIF: {out / 'scan.sarif'}")
    print("Try: garrison scan image demo/sample-image.tar --fail-on HIGH --ignore-unfixed; echo exit=$?")


if __name__ == "__main__":
    main()
