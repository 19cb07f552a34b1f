# Built with fail-1.context/ as the context, which has no .dockerignore.
FROM python:3.12-slim
WORKDIR /app
# expect: GD-033
COPY . .
CMD ["python", "app.py"]
