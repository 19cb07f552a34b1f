FROM node:20.14-alpine
WORKDIR /app
# expect: GD-032
COPY .env package.json ./
