#!/bin/sh
# Network sniffing / spoofing groundwork: open an AF_PACKET and a SOCK_RAW socket (T1040). The
# sockets are closed at once; nothing is sent or received. Without CAP_NET_RAW the attempt fails,
# which the syscall sensor still records.
# Expected: Garrison Packet Socket in Container / Garrison Packet Socket on Host.
set -eu
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
python3 - <<'PY'
import socket
for family, kind, proto in ((socket.AF_PACKET, socket.SOCK_RAW, 0), (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)):
    try:
        socket.socket(family, kind, proto).close()
        print(f"opened {family.name}/{kind.name}")
    except OSError as e:
        print(f"refused {family.name}/{kind.name}: {e.strerror}")
print("done: raw sockets")
PY
