FROM eclipse-temurin:21-jre
COPY target/app.jar /app.jar
ENTRYPOINT ["java", "-Xmx512m", "-jar", "/app.jar"]
