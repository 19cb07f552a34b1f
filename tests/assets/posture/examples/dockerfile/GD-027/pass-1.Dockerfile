# One CMD per stage: the build stage's CMD does not compete with the final one.
FROM python:3.12-slim AS test
COPY . /src
CMD ["pytest", "/src/tests"]

FROM python:3.12-slim
COPY app.py /app.py
ENTRYPOINT ["python", "/app.py"]
CMD ["--port", "8080"]
