FROM python:3.12-slim
# expect: GD-005
RUN wget -qO- https://install.python-poetry.org | python3 -
