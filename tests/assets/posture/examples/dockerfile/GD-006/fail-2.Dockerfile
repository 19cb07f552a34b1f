FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /src
COPY . .
RUN mvn -B package -DskipTests

# expect: GD-006
FROM eclipse-temurin
COPY --from=build /src/target/app.jar /app.jar
CMD ["java", "-jar", "/app.jar"]
