#!/usr/bin/env python3
"""Select the real advisory records the demo needs from the shared snapshots.

Copies, byte for byte, every OSV record from ../shared/data/advisories that names a package of
the demo image (its Python packages, the Go standard library) into demo/advisories/<eco>.zip,
plus Debian's DSA list, so `make demo` works offline on a clone without ../shared.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "advisories"
WANTED = {
    "PyPI": {"requests", "urllib3", "idna", "chardet", "certifi", "jinja2", "markupsafe", "werkzeug", "flask",
             "itsdangerous", "click"},
    "Go": {"stdlib"},
}


def main() -> None:
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found")
    out = HERE / "advisories"
    out.mkdir(exist_ok=True)
    for eco, names in WANTED.items():
        src = SHARED / "osv" / eco / "all.zip"
        kept = 0
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out / f"osv-{eco}.zip", "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                data = zin.read(info)
                record = json.loads(data)
                affected = {a.get("package", {}).get("name", "").lower() for a in record.get("affected", [])}
                if affected & names:
                    zout.writestr(info, data)
                    kept += 1
        print(f"{eco}: {kept} records")
    shutil.copy(SHARED / "debian" / "DSA.list", out / "DSA.list")
    for name in ("LICENSE", "SOURCE"):
        for eco in WANTED:
            src = SHARED / "osv" / eco / name
            if src.exists():
                shutil.copy(src, out / f"{eco}.{name}")


if __name__ == "__main__":
    main()
