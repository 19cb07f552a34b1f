# expect: GD-006
FROM nginx:latest
COPY site/ /usr/share/nginx/html/
