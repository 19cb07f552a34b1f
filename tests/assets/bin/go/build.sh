#!/usr/bin/env bash
# Build the Go test binaries into OUT_DIR with Debian's Go toolchain, fully offline.
#
# Dependencies come from Debian's packaged Go sources (/usr/share/gocode/src, packages
# golang-golang-x-text-dev and golang-github-google-uuid-dev), vendored with a vendor/modules.txt
# that names the Debian packages' upstream versions, so the build info records real module
# versions without a module proxy.
#
# usage: build.sh OUT_DIR
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
mkdir -p "$out"
gocode=/usr/share/gocode/src

upstream() {  # Debian version 0.7.0-1 -> v0.7.0
    local v
    v="$(dpkg-query -W -f='${Version}' "$1")"
    v="${v#*:}"
    echo "v${v%-*}"
}
text_version="$(upstream golang-golang-x-text-dev)"
uuid_version="$(upstream golang-github-google-uuid-dev)"

export GOFLAGS=-mod=vendor GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GO111MODULE=on CGO_ENABLED=0
export GOCACHE="$out/.gocache" GOPATH="$out/.gopath"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# package list of the two dependencies, as the Go tool resolves them in GOPATH mode
pkgs="$(cd "$here/app" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
    go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' . | grep -v '^_')"
uuid_pkgs="$(grep '^github.com/google/uuid' <<<"$pkgs")"
text_pkgs="$(grep '^golang.org/x/text' <<<"$pkgs")"

vendor() {  # vendor DIR: copy the dependency sources into DIR/vendor
    mkdir -p "$1/vendor/github.com/google" "$1/vendor/golang.org/x"
    cp -r "$gocode/github.com/google/uuid" "$1/vendor/github.com/google/uuid"
    cp -r "$gocode/golang.org/x/text" "$1/vendor/golang.org/x/text"
}

configure() {  # configure SRC DEST: copy a source dir and fill in the versions
    mkdir -p "$2"
    cp "$1"/*.go "$2/"
    sed -e "s/@TEXT_VERSION@/$text_version/g" -e "s/@UUID_VERSION@/$uuid_version/g" "$1/go.mod.in" >"$2/go.mod"
}

# 1. module-mode binary with vendored dependencies and a version stamped with -ldflags
configure "$here/app" "$work/app"
vendor "$work/app"
cat >"$work/app/vendor/modules.txt" <<EOF
# github.com/google/uuid $uuid_version
## explicit
$uuid_pkgs
# golang.org/x/text $text_version
## explicit; go 1.17
$text_pkgs
EOF
(cd "$work/app" && go build -buildvcs=false -ldflags="-X main.version=1.4.2" -o "$out/hello" .)
# 2. the same, stripped of symbols and DWARF
(cd "$work/app" && go build -buildvcs=false -ldflags="-s -w" -o "$out/hello-stripped" .)
# 3. position-independent executable
(cd "$work/app" && go build -buildvcs=false -buildmode=pie -o "$out/hello-pie" .)
# 4. cross-compiled for 32-bit x86 and for arm64
(cd "$work/app" && GOARCH=386 go build -buildvcs=false -o "$out/hello-386" .)
(cd "$work/app" && GOARCH=arm64 go build -buildvcs=false -trimpath -o "$out/hello-arm64" .)

# 5. replace directives: a module replaced by another module, and one by a local directory
configure "$here/replace" "$work/replace"
vendor "$work/replace"
mkdir -p "$work/replace/third_party"
cp -r "$gocode/github.com/google/uuid" "$work/replace/third_party/uuid"
[ -f "$work/replace/third_party/uuid/go.mod" ] || echo "module github.com/google/uuid" >"$work/replace/third_party/uuid/go.mod"
cat >"$work/replace/vendor/modules.txt" <<EOF
# github.com/google/uuid $uuid_version => ./third_party/uuid
## explicit
$uuid_pkgs
# golang.org/x/text $text_version => github.com/golang/text $text_version
## explicit; go 1.17
$text_pkgs
# github.com/google/uuid => ./third_party/uuid
# golang.org/x/text => github.com/golang/text $text_version
EOF
(cd "$work/replace" && go build -buildvcs=false -o "$out/replaced" .)

# 6. GOPATH mode: build info without module lines
mkdir -p "$work/gopath"
cp "$here/gopath/main.go" "$work/gopath/"
(cd "$work/gopath" && GO111MODULE=off GOFLAGS= go build -o "$out/plain" .)

rm -rf "$out/.gocache" "$out/.gopath"
go version >"$out/GO_VERSION"
