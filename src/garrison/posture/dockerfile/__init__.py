"""Dockerfile posture: a BuildKit-compatible parser (:mod:`.parser`) and the ``GD-*`` control
family (:mod:`.controls`, metadata in ``controls.yaml``)."""
