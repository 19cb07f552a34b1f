"""Garrison: cloud-native application protection, from build to run."""

__version__ = "0.1.0"
