FROM python:3.12-slim
WORKDIR /app
COPY . .
USER nobody
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"
CMD ["python", "-m", "http.server", "8000"]
