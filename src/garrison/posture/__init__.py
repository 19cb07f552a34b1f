"""Posture: controls over Kubernetes objects, Dockerfiles and nodes (CIS), frameworks, reports."""
