"""The official public sources of each feed (recorded with imports, used by ``db update``)."""

from __future__ import annotations

OSV_BASE = "https://osv-vulnerabilities.storage.googleapis.com"
DEBIAN_TRACKER_JSON = "https://security-tracker.debian.org/tracker/data/json"
DEBIAN_LISTS_BASE = "https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master"
ALPINE_BASE = "https://secdb.alpinelinux.org"
NVD_API = "https://services.nvd.nist.gov/rest/json/cves/2.0"


def feed_url(feed: str) -> str:
    """Where a feed (``osv:PyPI``, ``debian-dsa``, ``alpine-secdb:v3.18/main``, ``nvd``) is published."""
    if feed.startswith("osv:"):
        return f"{OSV_BASE}/{feed[4:]}/all.zip"
    if feed == "debian-tracker":
        return DEBIAN_TRACKER_JSON
    if feed == "debian-dsa":
        return f"{DEBIAN_LISTS_BASE}/data/DSA/list"
    if feed == "debian-dla":
        return f"{DEBIAN_LISTS_BASE}/data/DLA/list"
    if feed.startswith("alpine-secdb:"):
        release_repo = feed.split(":", 1)[1]
        return f"{ALPINE_BASE}/{release_repo}.json" if "/" in release_repo else f"{ALPINE_BASE}/{release_repo}/"
    if feed == "nvd":
        return NVD_API
    return ""
