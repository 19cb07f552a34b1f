FROM python:3.12-slim
WORKDIR /app
COPY . .
USER nobody
CMD ["python", "-m", "http.server", "8000"]
