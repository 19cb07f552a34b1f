#!/bin/bash
# Rebuilds the rpm databases in this folder. The three files hold the same packages:
#   rpmdb.sqlite  written by Debian's rpm (sqlite backend, rpm -i --justdb)
#   Packages      Berkeley DB hash, 4096-byte pages, written by db5.3_load (Debian db5.3-util)
#   Packages-512  the same with 512-byte pages (long overflow chains)
#   Packages.db   NDB, written by rpm's own lib/backend/ndb/rpmpkg.c (ndbput.c drives it)
# Debian's rpm cannot write BDB (bdb_ro only) or NDB (not built), hence db5.3_load and the
# rpmpkg.c build; rpm's bdb_ro backend reads the BDB files back as the check below shows.
# Needs: rpm, db5.3-util, gcc, gnupg, and rpm's source (RPM_SOURCE=dir, else apt-get source).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

mkdir -p specs
cat > specs/garrison-hello.spec <<'SPEC'
Name: garrison-hello
Version: 1.2.3
Release: 4.el9
Summary: Tiny test package
License: MIT
Vendor: Garrison Tests
BuildArch: noarch
%description
A tiny package.
%package libs
Summary: Library part
License: MIT AND BSD-3-Clause
%description libs
The library part, built from the same source package.
%install
mkdir -p %{buildroot}/usr/share/garrison-hello
echo hello > %{buildroot}/usr/share/garrison-hello/README
%files
/usr/share/garrison-hello/README
%files libs
SPEC
cat > specs/garrison-epoch.spec <<'SPEC'
Name: garrison-epoch
Epoch: 2
Version: 0.9
Release: 1
Summary: Package with an epoch
License: GPL-2.0-or-later
BuildArch: noarch
ModularityLabel: garrison:1.0:20240101:abcdef12
%description
Has an epoch and a modularity label.
%files
SPEC
{
  cat <<'SPEC'
Name: garrison-big
Version: 3.0
Release: 0.rc1
Summary: Package with a large header
License: Apache-2.0
BuildArch: noarch
%description
SPEC
  for i in $(seq 1 400); do echo "Line $i of a long description that makes the header span many pages."; done
  echo '%install'
  echo 'mkdir -p %{buildroot}/usr/share/garrison-big'
  echo 'for i in $(seq 1 300); do echo $i > %{buildroot}/usr/share/garrison-big/file-$i.txt; done'
  echo '%files'
  echo '/usr/share/garrison-big'
} > specs/garrison-big.spec

for spec in specs/*.spec; do
  rpmbuild --quiet -bb --define "_topdir $work/top" "$spec"
done

export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Garrison Test <test@example.invalid>' rsa2048 sign never
gpg --batch --armor --export > key.asc

db="$work/db"
mkdir -p "$db"
rpm --dbpath "$db" --define '_db_backend sqlite' --initdb
rpm --dbpath "$db" --define '_db_backend sqlite' --import key.asc
rpm --dbpath "$db" --define '_db_backend sqlite' -i --justdb --nodeps --noscripts --nosignature top/RPMS/noarch/*.rpm

python3 - "$db/rpmdb.sqlite" <<'PY'
import sqlite3, struct, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
with open("blobs.bin", "wb") as out:
    for _, blob in rows:
        out.write(struct.pack("<I", len(blob)) + blob)
with open("dump.txt", "w") as out:
    out.write("VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n")
    out.write(" " + struct.pack("<I", 0).hex() + "\n " + struct.pack("<I", max(h for h, _ in rows)).hex() + "\n")
    for hnum, blob in rows:
        out.write(" " + struct.pack("<I", hnum).hex() + "\n " + blob.hex() + "\n")
    out.write("DATA=END\n")
PY

cp "$db/rpmdb.sqlite" "$here/rpmdb.sqlite"
rm -f "$here/Packages" "$here/Packages-512" "$here/Packages.db"
db5.3_load -t hash -c db_pagesize=4096 -f dump.txt "$here/Packages"
db5.3_load -t hash -c db_pagesize=512 -f dump.txt "$here/Packages-512"

if [ ! -d "${RPM_SOURCE:-}" ]; then
  mkdir -p "$work/lists/partial"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" > "$work/src.list"
  apt-get -o Dir::Etc::SourceList="$work/src.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$work/lists" update -qq
  apt-get -o Dir::Etc::SourceList="$work/src.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$work/lists" source --download-only rpm
  tar xf rpm_*.orig.tar.xz
  RPM_SOURCE=$(echo "$work"/rpm-*/)
fi
mkdir -p shim/rpm
cat > shim/system.h <<'H'
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
static inline void *xmalloc(size_t n) { void *p = malloc(n); if (!p) abort(); return p; }
static inline void *xcalloc(size_t n, size_t s) { void *p = calloc(n, s); if (!p) abort(); return p; }
static inline void *xrealloc(void *o, size_t n) { void *p = realloc(o, n); if (!p) abort(); return p; }
static inline char *xstrdup(const char *s) { char *p = strdup(s); if (!p) abort(); return p; }
#define _(x) x
H
cat > shim/rpm/rpmlog.h <<'H'
#include <stdio.h>
#define RPMLOG_ERR 3
#define RPMLOG_WARNING 4
#define rpmlog(level, ...) fprintf(stderr, __VA_ARGS__)
H
ndb_src="$RPM_SOURCE/lib/backend/ndb"
gcc -O1 -w -Ishim -I"$ndb_src" -o ndbput "$here/ndbput.c" "$ndb_src/rpmpkg.c"
./ndbput "$here/Packages.db" < blobs.bin

mkdir sq bdb && cp "$here/rpmdb.sqlite" sq/ && cp "$here/Packages" bdb/
echo "sqlite:"; rpm --dbpath "$work/sq" --define '_db_backend sqlite' -qa | sort
echo "bdb_ro:"; rpm --dbpath "$work/bdb" --define '_db_backend bdb_ro' -qa | sort
