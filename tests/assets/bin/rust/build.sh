#!/usr/bin/env bash
# Build the Rust test inputs into OUT_DIR with the installed cargo, fully offline.
#
# crates.io dependencies resolve from Debian's packaged crate sources (librust-itoa-dev,
# librust-cfg-if-dev, librust-libc-dev, librust-autocfg-dev under /usr/share/cargo/registry).
#  * Cargo.lock.v1 .. Cargo.lock.v4: the same project locked by cargo in each lock-file format
#    (cargo picks the format from the package's rust-version), with cargo's own reading of
#    each (`cargo metadata --locked`) in metadata.vN.json as the oracle.
#  * auditable-demo: a release binary carrying a `.dep-v0` section in cargo-auditable's format,
#    generated from `cargo metadata` by gen_audit.py; audit.json is the uncompressed payload.
#
# usage: build.sh OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$work/target" CARGO_NET_OFFLINE=true CARGO_TERM_COLOR=never

for v in 1:1.40 2:1.50 3:1.60 4:; do
    n="${v%%:*}" rv="${v#*:}"
    rm -rf "$work/p$n" && cp -r "$here/project" "$work/p$n"
    if [ -n "$rv" ]; then
        sed -i "s/^publish = false$/publish = false\nrust-version = \"$rv\"/" "$work/p$n/Cargo.toml"
    fi
    (cd "$work/p$n" && cargo generate-lockfile --offline -q)
    (cd "$work/p$n" && cargo metadata --format-version 1 --offline --locked >"$out/metadata.v$n.json")
    cp "$work/p$n/Cargo.lock" "$out/Cargo.lock.v$n"
done

python3 "$here/gen_audit.py" "$out/metadata.v4.json" "$out/audit.json" "$work/audit.z"
(cd "$work/p4" && GARRISON_AUDIT_DATA="$work/audit.z" cargo build --release --offline --locked -q)
cp "$work/target/release/garrison-audit-demo" "$out/auditable-demo"
cargo --version >"$out/CARGO_VERSION"
