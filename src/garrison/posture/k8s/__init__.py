"""Kubernetes manifests: loading with line numbers (:mod:`.loader`), the object model
(:mod:`.objects`) and the Pod Security Standards engine (:mod:`.pss`)."""
