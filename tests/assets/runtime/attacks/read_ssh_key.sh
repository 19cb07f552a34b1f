#!/bin/sh
# Credential access: read a user's SSH private key (T1552.004) with a program outside the SSH
# tool set. The key is a placeholder in a home directory made for the run, removed on exit.
# Expected: Garrison SSH Private Key Read.
set -eu
home=/home/garrison-attack-sim-$$
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.ssh"
echo "placeholder, not a key" >"$home/.ssh/id_ed25519"
cat "$home/.ssh/id_ed25519" >/dev/null
echo "done: read $home/.ssh/id_ed25519"
