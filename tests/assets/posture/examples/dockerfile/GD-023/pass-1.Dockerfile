FROM php:8.3-apache
COPY --chown=www-data:www-data . /var/www/html/
RUN chmod -R u+rwX,g+rX,o-rwx /var/www/html/storage && chmod 0755 /var/www/html
