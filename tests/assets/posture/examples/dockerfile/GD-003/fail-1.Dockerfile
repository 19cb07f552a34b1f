FROM python:3.12-slim
WORKDIR /app
# expect: GD-003
ADD requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
# expect: GD-003
ADD . /app
CMD ["gunicorn", "app:app"]
