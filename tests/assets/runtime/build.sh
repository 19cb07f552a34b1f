#!/usr/bin/env bash
# Builds the container images the runtime tests (attribution, drift, response, attack
# simulations) run under real podman, and loads them into podman's local storage.
#
#   garrison-test/runtime-busybox:1   busybox-static with every applet as a symlink, /etc/passwd
#   garrison-test/runtime-debian:1    Debian 12 minbase (mmdebstrap) + python3, procps, bash
#
# The root filesystems are packed as plain tars under $GARRISON_TEST_IMAGES/runtime (default
# /var/tmp/garrison-test-images/runtime) and loaded with `podman import`; both steps are skipped
# when their output already exists, so the script is cheap to rerun. runtime.json records the
# image names and podman image IDs.
#
# Needs: podman, busybox-static, mmdebstrap (Debian mirror).
set -euo pipefail
out=${GARRISON_TEST_IMAGES:-/var/tmp/garrison-test-images}/runtime
mirror=${GARRISON_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export SOURCE_DATE_EPOCH=1735689600  # 2025-01-01
podman=(podman --cgroup-manager=cgroupfs --events-backend=file)
mkdir -p "$out"

say() { echo "runtime/build.sh: $*" >&2; }

for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { say "missing tool: $tool"; exit 1; }
done
[ -x /bin/busybox ] || { say "missing /bin/busybox (apt-get install busybox-static)"; exit 1; }

busybox_tar() {
  local tar="$out/busybox.tar" dir="$out/busybox.rootfs"
  if [ -f "$tar" ]; then return; fi
  say "busybox rootfs -> $tar"
  rm -rf "$dir"
  mkdir -p "$dir"/{bin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  printf 'root:*:20000:0:99999:7:::\n' >"$dir/etc/shadow"
  chmod 0640 "$dir/etc/shadow"
  tar --sort=name --mtime=@"$SOURCE_DATE_EPOCH" --numeric-owner -C "$dir" -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$dir"
}

debian_tar() {
  local tar="$out/debian.tar"
  if [ -f "$tar" ]; then return; fi
  say "mmdebstrap --variant=minbase bookworm +python3 -> $tar"
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar --aptopt='Acquire::Retries "3"' \
    --include=python3,procps,cron \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
    bookworm "$tar.tmp" "$mirror"
  mv "$tar.tmp" "$tar"
}

# load NAME TAR: podman import unless the image is already in podman's storage
load() {
  local name=$1 tar=$2
  if "${podman[@]}" image exists "$name"; then return; fi
  say "podman import $tar $name"
  "${podman[@]}" import --quiet "$tar" "$name" >/dev/null
}

busybox_tar
debian_tar
load localhost/garrison-test/runtime-busybox:1 "$out/busybox.tar"
load localhost/garrison-test/runtime-debian:1 "$out/debian.tar"

{
  echo '{"images": {'
  sep=""
  for pair in busybox:localhost/garrison-test/runtime-busybox:1 debian:localhost/garrison-test/runtime-debian:1; do
    key=${pair%%:*} name=${pair#*:}
    id=$("${podman[@]}" image inspect --format '{{.Id}}' "$name")
    printf '%s"%s": {"name": "%s", "id": "%s"}' "$sep" "$key" "$name" "$id"
    sep=", "
  done
  echo '}}'
} >"$out/runtime.json.tmp"
mv "$out/runtime.json.tmp" "$out/runtime.json"
say "done: $out/runtime.json"
