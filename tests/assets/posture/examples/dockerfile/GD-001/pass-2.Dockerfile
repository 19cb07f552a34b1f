# The final stage inherits USER from the stage it is built FROM.
FROM python:3.12-slim AS base
RUN useradd --create-home --uid 10001 app
USER app

FROM base AS runtime
WORKDIR /home/app
COPY --chown=app app.py .
CMD ["python", "app.py"]
