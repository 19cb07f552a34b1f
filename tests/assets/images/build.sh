#!/usr/bin/env bash
# Builds the real container images the image-source tests and the benchmarks read.
#
#   debian-bookworm   Debian 12 minbase root filesystem (mmdebstrap), one layer
#   debian-bullseye   Debian 11 minbase root filesystem (mmdebstrap), one layer
#   app               bookworm + pip --target packages + npm packages + a Go binary built with
#                     Debian's Go and golang.org/x/text + a layer with whiteouts and an opaque dir
#
# Each image is written as a docker-archive tar (demo/pack.py), an OCI layout directory and an
# oci-archive tar (skopeo); app also as a zstd-compressed OCI layout and bookworm also in the
# OCI-in-docker-save form Docker 25+ writes. index.json describes every output. Results are cached
# under $GARRISON_TEST_IMAGES (default /var/tmp/garrison-test-images) and rebuilt only when missing.
#
# Needs: mmdebstrap (Debian mirror), skopeo, python3 with pip (PyPI), npm (npm registry),
# go (Debian golang-go) and golang-golang-x-text-dev.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${GARRISON_TEST_IMAGES:-/var/tmp/garrison-test-images}
mirror=${GARRISON_DEBIAN_MIRROR:-http://deb.debian.org/debian}
python=${PYTHON:-python3}
export SOURCE_DATE_EPOCH=1735689600  # 2025-01-01
mkdir -p "$out/work"

say() { echo "build.sh: $*" >&2; }

for tool in mmdebstrap skopeo npm go "$python"; do
  command -v "$tool" >/dev/null || { say "missing tool: $tool"; exit 1; }
done

# rootfs SUITE: a minbase root filesystem in $out/rootfs-SUITE
rootfs() {
  local suite=$1 dir="$out/rootfs-$1"
  if [ -f "$dir/.garrison-done" ]; then return; fi
  say "mmdebstrap --variant=minbase $suite -> $dir"
  rm -rf "$dir" "$dir.tmp"
  mmdebstrap --quiet --variant=minbase --mode=root --aptopt='Acquire::Retries "3"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
    "$suite" "$dir.tmp" "$mirror"
  mv "$dir.tmp" "$dir"
  touch "$dir/.garrison-done"
}

# pack NAME TAG LAYER... : docker-archive $out/NAME.docker.tar from layer directories
pack() {
  local name=$1 tag=$2; shift 2
  local tar="$out/$name.docker.tar"
  if [ -f "$tar" ]; then return; fi
  local args=()
  for layer in "$@"; do args+=(--layer "$layer"); done
  say "pack $tar"
  "$python" "$repo/demo/pack.py" "$tar.tmp" --tag "$tag" "${args[@]}" \
    --env PYTHONPATH=/usr/local/lib/python3.11/site-packages --cmd /bin/bash >&2
  mv "$tar.tmp" "$tar"
}

# convert NAME TAG: OCI layout and oci-archive from the docker-archive
convert() {
  local name=$1 tag=$2 src="docker-archive:$out/$1.docker.tar"
  if [ ! -f "$out/$name.oci/index.json" ]; then
    say "skopeo copy $src oci:$out/$name.oci:$tag"
    rm -rf "$out/$name.oci"
    skopeo copy --quiet "$src" "oci:$out/$name.oci:$tag"
  fi
  if [ ! -f "$out/$name.oci.tar" ]; then
    say "skopeo copy $src oci-archive:$out/$name.oci.tar:$tag"
    rm -f "$out/$name.oci.tar.tmp"
    skopeo copy --quiet "$src" "oci-archive:$out/$name.oci.tar.tmp:$tag"
    mv "$out/$name.oci.tar.tmp" "$out/$name.oci.tar"
  fi
}

rootfs bookworm
rootfs bullseye
pack debian-bookworm garrison-test/debian:bookworm "$out/rootfs-bookworm=mmdebstrap --variant=minbase bookworm"
pack debian-bullseye garrison-test/debian:bullseye "$out/rootfs-bullseye=mmdebstrap --variant=minbase bullseye"
convert debian-bookworm bookworm
convert debian-bullseye bullseye

# app layers
layers="$out/work/app"
if [ ! -f "$layers/.garrison-done" ]; then
  rm -rf "$layers"
  mkdir -p "$layers"
  py="$layers/python/usr/local/lib/python3.11/site-packages"
  mkdir -p "$py"
  say "pip install --target $py"
  "$python" -m pip install -q --disable-pip-version-check --no-compile --no-deps --only-binary :all: \
    --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --target "$py" \
    requests==2.19.1 urllib3==1.24.1 idna==2.7 chardet==3.0.4 certifi==2018.4.16 \
    Jinja2==2.10 MarkupSafe==2.1.3 six==1.10.0
  rm -rf "$py/bin"

  say "npm install lodash@4.17.15 minimist@1.2.0 express@4.17.1"
  mkdir -p "$layers/node/srv/web"
  (cd "$layers/node/srv/web" && npm init -y >/dev/null &&
    npm install --silent --no-audit --no-fund --ignore-scripts lodash@4.17.15 minimist@1.2.0 express@4.17.1 >/dev/null)

  say "go build (golang.org/x/text from Debian, vendored)"
  gosrc="$out/work/gosrc"
  rm -rf "$gosrc"
  mkdir -p "$gosrc/vendor/golang.org/x" "$layers/go/usr/local/bin"
  cat > "$gosrc/main.go" <<'GO'
package main

import (
	"fmt"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

func main() {
	fmt.Println(cases.Title(language.English).String("hello from garrison"))
}
GO
  printf 'module example.com/garrison/hello\n\ngo 1.19\n\nrequire golang.org/x/text v0.7.0\n' > "$gosrc/go.mod"
  cp -r /usr/share/gocode/src/golang.org/x/text "$gosrc/vendor/golang.org/x/text"
  { echo "# golang.org/x/text v0.7.0"; echo "## explicit; go 1.17"
    (cd "$gosrc/vendor" && find golang.org/x/text -name '*.go' ! -name '*_test.go' -printf '%h\n' | grep -v testdata | sort -u)
  } > "$gosrc/vendor/modules.txt"
  (cd "$gosrc" && GOFLAGS="-mod=vendor -buildvcs=false" GOPROXY=off CGO_ENABLED=0 GOCACHE="$out/work/gocache" \
    go build -trimpath -o "$layers/go/usr/local/bin/hello" .)

  say "whiteout layer"
  # deletes six (installed above) and /etc/issue.net, and replaces /etc/apt/apt.conf.d wholesale
  wh="$layers/whiteout"
  mkdir -p "$wh/usr/local/lib/python3.11/site-packages" "$wh/etc/apt/apt.conf.d"
  touch "$wh/usr/local/lib/python3.11/site-packages/.wh.six.py" \
        "$wh/usr/local/lib/python3.11/site-packages/.wh.six-1.10.0.dist-info" \
        "$wh/etc/.wh.issue.net" "$wh/etc/apt/apt.conf.d/.wh..wh..opq"
  echo 'APT::Install-Recommends "false";' > "$wh/etc/apt/apt.conf.d/99garrison"
  touch "$layers/.garrison-done"
fi
pack app garrison-test/app:1.0 \
  "$out/rootfs-bookworm=mmdebstrap --variant=minbase bookworm" \
  "$layers/python=RUN pip install --target /usr/local/lib/python3.11/site-packages requests==2.19.1 Jinja2==2.10 six==1.10.0" \
  "$layers/node=RUN npm install lodash@4.17.15 minimist@1.2.0 express@4.17.1" \
  "$layers/go=COPY hello /usr/local/bin/hello" \
  "$layers/whiteout=RUN rm -rf /etc/issue.net six /etc/apt/apt.conf.d/*"
convert app 1.0
if [ ! -f "$out/app.oci-zstd/index.json" ]; then
  say "skopeo copy --dest-compress-format zstd -> $out/app.oci-zstd"
  rm -rf "$out/app.oci-zstd"
  skopeo copy --quiet --dest-compress --dest-compress-format zstd \
    "docker-archive:$out/app.docker.tar" "oci:$out/app.oci-zstd:1.0"
fi

# bookworm as Docker 25+ `docker save` writes it: an OCI layout plus manifest.json
if [ ! -f "$out/debian-bookworm.moby25.tar" ]; then
  say "OCI-in-docker-save archive $out/debian-bookworm.moby25.tar"
  tmp="$out/work/moby25"
  rm -rf "$tmp"
  skopeo copy --quiet --dest-decompress "docker-archive:$out/debian-bookworm.docker.tar" "oci:$tmp:bookworm"
  "$python" - "$tmp" "$out/debian-bookworm.moby25.tar" <<'PY'
import json, sys, tarfile
from pathlib import Path
root, dest = Path(sys.argv[1]), Path(sys.argv[2])
index = json.loads((root / "index.json").read_text())
desc = index["manifests"][0]
desc.setdefault("annotations", {})["io.containerd.image.name"] = "docker.io/garrison-test/debian:bookworm"
(root / "index.json").write_text(json.dumps(index))
manifest = json.loads((root / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_text())
blob = lambda d: "blobs/sha256/" + d["digest"].split(":")[1]
entry = {"Config": blob(manifest["config"]), "RepoTags": ["garrison-test/debian:bookworm"],
         "Layers": [blob(layer) for layer in manifest["layers"]]}
(root / "manifest.json").write_text(json.dumps([entry]))
with tarfile.open(str(dest) + ".tmp", "w", format=tarfile.PAX_FORMAT) as tar:
    for path in sorted(root.rglob("*")):
        info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
        info.mtime, info.uid, info.gid = 0, 0, 0
        if info.isfile():
            with path.open("rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
Path(str(dest) + ".tmp").rename(dest)
PY
  rm -rf "$tmp"
fi

say "index $out/index.json"
"$python" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
images = {}
for name, tag in (("debian-bookworm", "bookworm"), ("debian-bullseye", "bullseye"), ("app", "1.0")):
    images[f"{name}-docker-archive"] = {"image": name, "format": "docker-archive", "path": f"{name}.docker.tar"}
    images[f"{name}-oci-layout"] = {"image": name, "format": "oci-layout", "path": f"{name}.oci", "tag": tag}
    images[f"{name}-oci-archive"] = {"image": name, "format": "oci-archive", "path": f"{name}.oci.tar", "tag": tag}
images["app-oci-layout-zstd"] = {"image": "app", "format": "oci-layout", "path": "app.oci-zstd", "tag": "1.0",
                                 "compression": "zstd"}
images["debian-bookworm-moby25-archive"] = {"image": "debian-bookworm", "format": "docker-archive",
                                            "path": "debian-bookworm.moby25.tar", "variant": "oci-in-docker-save"}
images["debian-bookworm-rootfs"] = {"image": "debian-bookworm", "format": "rootfs", "path": "rootfs-bookworm"}
images["debian-bullseye-rootfs"] = {"image": "debian-bullseye", "format": "rootfs", "path": "rootfs-bullseye"}
for name, meta in images.items():
    if not (out / meta["path"]).exists():
        sys.exit(f"build.sh: {name}: {out / meta['path']} is missing")
(out / "index.json").write_text(json.dumps({"version": 1, "images": images}, indent=2, sort_keys=True) + "\n")
PY
say "done: $out"
