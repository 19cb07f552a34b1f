#!/usr/bin/env bash
# Builds demo/sample-image.tar, the image `make demo` scans, from real parts only:
#   layer 1  distroless-style Debian 12 base: os-release and dpkg status.d stanzas of this
#            Debian 12 machine's own packages (dpkg-query -s)
#   layer 2  Python packages installed with pip --target (old releases with public advisories)
#   layer 3  a Go program built with Debian's Go toolchain (its stdlib version has advisories)
#   layer 4  npm packages installed with npm
#   layer 5  an application config that leaks a private key (made here by openssl)
# Needs: dpkg-query, pip (PyPI), npm (npm registry), go (Debian golang-go), openssl.
# The output is committed; re-run only to refresh it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1735689600  # 2025-01-01

base=$work/base
mkdir -p "$base/etc" "$base/usr/lib" "$base/var/lib/dpkg/status.d"
cp /usr/lib/os-release "$base/usr/lib/os-release"
ln -s ../usr/lib/os-release "$base/etc/os-release"
cp /etc/debian_version "$base/etc/debian_version"
for p in base-files netbase tzdata libc6 libssl3 openssl zlib1g ca-certificates libsqlite3-0 libexpat1 libffi8 \
         libgcc-s1 libstdc++6 libzstd1 liblzma5 libbz2-1.0 libcrypt1 libuuid1 libncursesw6 libtinfo6 libreadline8; do
  if dpkg-query -s "$p" >/dev/null 2>&1; then
    dpkg-query -s "$p" > "$base/var/lib/dpkg/status.d/$p"
  fi
done

py=$work/python/usr/local/lib/python3.11/site-packages
mkdir -p "$py"
python3 -m pip install -q --no-compile --no-deps --only-binary :all: --target "$py" \
  requests==2.19.1 urllib3==1.24.1 idna==2.7 chardet==3.0.4 certifi==2018.4.16 \
  Jinja2==2.10 MarkupSafe==2.1.3 Werkzeug==0.15.0 Flask==1.0 itsdangerous==1.1.0 click==7.0
rm -rf "$py/bin"

gosrc=$work/gosrc
mkdir -p "$gosrc" "$work/go/usr/local/bin"
cat > "$gosrc/main.go" <<'GO'
package main

import (
	"fmt"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	_ = http.ListenAndServe(":8080", nil)
}
GO
(cd "$gosrc" && cat > go.mod <<'MOD'
module example.com/demo/server

go 1.19
MOD
 GOFLAGS=-buildvcs=false GOPROXY=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/go/usr/local/bin/server" .)

mkdir -p "$work/node/srv/web"
(cd "$work/node/srv/web" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund lodash@4.17.15 minimist@1.2.0 >/dev/null)

mkdir -p "$work/app/srv/app"
{
  echo "# application settings"
  echo "LISTEN=:8080"
  echo "TLS_KEY_PEM='"
  openssl genpkey -algorithm ed25519 2>/dev/null
  echo "'"
} > "$work/app/srv/app/settings.env"

python3 "$here/pack.py" "$here/sample-image.tar" --tag garrison-demo/web:1.0 \
  --layer "$base=ADD debian-12-base /" \
  --layer "$work/python=RUN pip install --target /usr/local/lib/python3.11/site-packages flask==1.0 requests==2.19.1" \
  --layer "$work/go=COPY server /usr/local/bin/server" \
  --layer "$work/node=RUN npm install lodash@4.17.15 minimist@1.2.0" \
  --layer "$work/app=COPY settings.env /srv/app/" \
  --env PYTHONPATH=/usr/local/lib/python3.11/site-packages --cmd /usr/local/bin/server
