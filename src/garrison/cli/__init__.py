"""The ``garrison`` command line: thin wrappers around the engines."""
