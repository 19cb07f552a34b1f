FROM python:3.12-slim
# expect: GD-037
RUN pip install --no-cache-dir --trusted-host pypi.internal.example.com -i http://pypi.internal.example.com/simple requests==2.32.3
