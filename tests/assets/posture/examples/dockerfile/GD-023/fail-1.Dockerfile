FROM php:8.3-apache
COPY . /var/www/html/
# expect: GD-023
RUN chown -R www-data /var/www/html && chmod -R 777 /var/www/html/storage
