FROM node:20.14-alpine
RUN npm install -g pm2@5.4.0 typescript@5.4.5 @nestjs/cli@10.3.2
