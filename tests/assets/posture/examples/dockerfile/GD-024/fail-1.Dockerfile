FROM ruby:3.3-slim
# expect: GD-024
WORKDIR app
COPY Gemfile Gemfile.lock ./
RUN bundle install
