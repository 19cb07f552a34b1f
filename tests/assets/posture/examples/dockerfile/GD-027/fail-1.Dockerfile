FROM python:3.12-slim
COPY app.py /app.py
# expect: GD-027
CMD ["python", "/app.py", "--debug"]
CMD ["python", "/app.py"]
