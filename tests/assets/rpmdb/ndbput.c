/* Store rpm header blobs in an NDB Packages.db with rpm's own rpmpkgPut().
 * Input on stdin: repeated (uint32 little-endian length, blob bytes). pkgidx counts from 1. */
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include "rpmpkg.h"
int main(int argc, char **argv) {
    rpmpkgdb db;
    unsigned char lenbuf[4];
    unsigned int idx = 0;
    if (argc != 2) { fprintf(stderr, "usage: ndbput Packages.db < blobs\n"); return 2; }
    if (rpmpkgOpen(&db, argv[1], O_RDWR | O_CREAT, 0644)) { fprintf(stderr, "open failed\n"); return 1; }
    if (rpmpkgLock(db, 1)) { fprintf(stderr, "lock failed\n"); return 1; }
    while (fread(lenbuf, 1, 4, stdin) == 4) {
        unsigned int n = lenbuf[0] | lenbuf[1] << 8 | lenbuf[2] << 16 | (unsigned int)lenbuf[3] << 24;
        unsigned char *blob = malloc(n);
        if (!blob || fread(blob, 1, n, stdin) != n) { fprintf(stderr, "short input\n"); return 1; }
        if (rpmpkgNextPkgIdx(db, &idx) || rpmpkgPut(db, idx, blob, n)) { fprintf(stderr, "put failed\n"); return 1; }
        free(blob);
    }
    if (rpmpkgVerify(db)) { fprintf(stderr, "verify failed\n"); return 1; }
    rpmpkgUnlock(db, 1);
    rpmpkgClose(db);
    return 0;
}
