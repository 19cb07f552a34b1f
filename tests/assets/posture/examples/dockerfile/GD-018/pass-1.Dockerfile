FROM alpine:3.20
RUN apk add --no-cache --virtual .build-deps gcc=13.2.1_git20240309-r0 musl-dev=1.2.5-r0 \
    && apk add --no-cache bash=5.2.26-r0 git~2.45 \
    && apk del .build-deps
