# Built with pass-1.context/ as the context, which has a .dockerignore.
FROM python:3.12-slim
WORKDIR /app
COPY . .
CMD ["python", "app.py"]
