FROM python:3.12-slim
COPY install-poetry.sha256 /tmp/
RUN set -eux; \
    python3 -c "import urllib.request; urllib.request.urlretrieve('https://install.python-poetry.org', '/tmp/install-poetry.py')"; \
    sha256sum -c /tmp/install-poetry.sha256; \
    python3 /tmp/install-poetry.py --version 1.8.3
