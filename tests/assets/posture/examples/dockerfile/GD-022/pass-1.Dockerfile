# syntax=docker/dockerfile:1.7
FROM node:20.14-alpine
ARG SENTRY_PUBLIC_KEY
ENV NODE_ENV=production
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci
