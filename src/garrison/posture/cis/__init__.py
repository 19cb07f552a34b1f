"""CIS Kubernetes node benchmark checks, compatible with kube-bench's definitions and engine.

* :mod:`.definitions` loads ``config.yaml`` and the control files packaged under ``data/``
  (kube-bench's CIS 1.12 definitions, Apache-2.0, see ``data/SOURCE``);
* :mod:`.engine` evaluates a check's tests exactly like kube-bench;
* :mod:`.jsonpath` is the Kubernetes JSONPath dialect the ``path`` tests use;
* :mod:`.runner` runs the audit commands on a node and reports :class:`ControlResult`\\ s.
"""
