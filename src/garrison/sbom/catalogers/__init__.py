"""Catalogers, one module per ecosystem; each registers itself with ``@cataloger``."""
