FROM python:3.12-slim
# expect: GD-022
ENV DJANGO_SETTINGS_MODULE=shop.settings DB_PASSWORD=changeme
CMD ["gunicorn", "shop.wsgi"]
