"""Advisory ingest: one module per source format, each yielding normalised records from a path.

``osv`` (OSV JSON records, zips and directories), ``debian`` (tracker JSON export, DSA/DLA
lists), ``alpine`` (secdb YAML/JSON), ``nvd`` (API 2.0 responses, 1.1 feeds).
"""
