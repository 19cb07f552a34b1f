# expect: GD-034
FROM --platform=linux/amd64 node:20.14-bookworm-slim
WORKDIR /app
COPY . .
