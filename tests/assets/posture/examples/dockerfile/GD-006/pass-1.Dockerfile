FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /src
COPY . .
RUN mvn -B package -DskipTests

FROM eclipse-temurin:21.0.3_9-jre-jammy
COPY --from=build /src/target/app.jar /app.jar
CMD ["java", "-jar", "/app.jar"]
