FROM ruby:3.3-slim
ENV APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY Gemfile Gemfile.lock ./
RUN bundle install
