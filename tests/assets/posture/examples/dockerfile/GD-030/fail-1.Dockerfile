FROM python:3.12-slim
# expect: GD-030
RUN pip install --no-cache-dir flask gunicorn==22.0.0
