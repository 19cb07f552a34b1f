FROM python:3.12-slim
COPY requirements.txt .
# expect: GD-029
RUN pip install -r requirements.txt
