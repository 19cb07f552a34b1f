"""Cross-cutting basics: errors, configuration, limits."""
