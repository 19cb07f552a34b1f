FROM node:20.14-alpine
# expect: GD-031
RUN npm install -g pm2 typescript@5.4.5
