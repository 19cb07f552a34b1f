"""Kubernetes admission webhook: AdmissionReview v1 parsing (:mod:`.review`), the policy
engine (:mod:`.policy`: Pod Security levels per namespace, the control library, image rules,
required labels, CEL rules and a vulnerability gate), mutation defaults (:mod:`.mutate`), the
HTTPS server (:mod:`.server`) and install manifests (:mod:`.manifests`, :mod:`.certs`)."""
