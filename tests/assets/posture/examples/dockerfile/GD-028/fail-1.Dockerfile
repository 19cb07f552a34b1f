FROM openjdk:21-jdk-slim
COPY target/app.jar /app.jar
# expect: GD-028
ENTRYPOINT java -Xmx512m -jar /app.jar
