"""Vulnerability database: advisory ingest, per-ecosystem version schemes, the local DB, matching."""
