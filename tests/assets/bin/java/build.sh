#!/usr/bin/env bash
# Build the Java archive test inputs into OUT_DIR with the JDK's jar tool, and compile the
# JarOracle (java.util.jar.Manifest / java.util.Properties) used as the reference reader.
#
# Real upstream jars come from Debian packages (apt-get download libcommons-lang3-java
# libcommons-io-java, extracted with dpkg-deb); they carry Maven's pom.properties.
#
# usage: build.sh OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

javac -d "$out/oracle" "$here/JarOracle.java"

# -- real jars from Debian --------------------------------------------------------------------
(cd "$work" && apt-get download -q libcommons-lang3-java libcommons-io-java >/dev/null 2>&1)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/debian"; done
cp "$work/debian/usr/share/java/commons-lang3.jar" "$out/commons-lang3.jar"
cp "$work/debian/usr/share/java/commons-io.jar" "$out/commons-io.jar"
dpkg-deb -f "$work"/libcommons-lang3-java_*.deb Version >"$out/DEBIAN_VERSIONS"
dpkg-deb -f "$work"/libcommons-io-java_*.deb Version >>"$out/DEBIAN_VERSIONS"

# make ARCHIVE MANIFEST|- [SRC_DIR]: a jar from a staging directory with the jar tool
make() {
    local archive="$1" manifest="$2" dir="${3:-$work/empty}"
    mkdir -p "$dir" "$work/empty"
    [ -n "$(ls -A "$dir")" ] || echo "placeholder" >"$dir/README.txt"
    if [ "$manifest" = "-" ]; then
        jar --create --no-manifest --file "$out/$archive" -C "$dir" .
    else
        jar --create --manifest "$here/manifests/$manifest" --file "$out/$archive" -C "$dir" .
    fi
}
pom() {  # pom STAGING GROUP ARTIFACT PROPERTIES_FILE
    mkdir -p "$1/META-INF/maven/$2/$3"
    cp "$4" "$1/META-INF/maven/$2/$3/pom.properties"
}

# 1. pom.properties matching the file name, manifest with a folded long attribute
pom "$work/widget" com.acme acme-widget "$here/poms/widget.properties"
make acme-widget-1.2.3.jar widget.mf "$work/widget"
# 2. manifest only (Implementation-Vendor-Id/Title/Version), no version in the name
make report-engine.jar manifest-only.mf
# 3. OSGi bundle: group from Bundle-SymbolicName
make eventbus-bundle.jar bundle.mf
# 4. nothing but the file name
make plain-util-3.4.5.jar -
# 5. pom.properties with separators, escapes and a continuation line
pom "$work/legacy" org.example.legacy legacy-codec "$here/poms/legacy.properties"
make legacy-codec-2.0.1.jar - "$work/legacy"
# 6. shaded jar: its own pom.properties and the one of the bundled commons-lang3
pom "$work/shaded" com.acme shaded-app "$here/poms/shaded.properties"
(cd "$work/shaded" && jar xf "$out/commons-lang3.jar" META-INF/maven/org.apache.commons/commons-lang3/pom.properties)
make shaded-app-1.0.0.jar - "$work/shaded"
# 7. war with WEB-INF/lib, its own pom.properties and no version in its name
pom "$work/war" com.acme webapp "$here/poms/webapp.properties"
mkdir -p "$work/war/WEB-INF/lib" "$work/war/WEB-INF/classes"
cp "$out/acme-widget-1.2.3.jar" "$out/plain-util-3.4.5.jar" "$work/war/WEB-INF/lib/"
cp "$out/commons-lang3.jar" "$work/war/WEB-INF/lib/commons-lang3-3.12.0.jar"
echo "<web-app/>" >"$work/war/WEB-INF/web.xml"
make webapp.war - "$work/war"
# 8. Spring-Boot style fat jar: BOOT-INF/lib, identified by its manifest
mkdir -p "$work/boot/BOOT-INF/lib"
cp "$out/commons-io.jar" "$work/boot/BOOT-INF/lib/commons-io-2.11.0.jar"
cp "$out/eventbus-bundle.jar" "$work/boot/BOOT-INF/lib/"
make boot-demo-0.9.0.jar boot.mf "$work/boot"
# 9. ear holding the war (two levels of nesting) and a library
mkdir -p "$work/ear/lib"
cp "$out/webapp.war" "$work/ear/"
cp "$out/legacy-codec-2.0.1.jar" "$work/ear/lib/"
make enterprise.ear - "$work/ear"
# 10. Jenkins plugin
pom "$work/hpi" org.jenkins-ci.plugins git-client "$here/poms/git-client.properties"
make git-client-4.0.0.hpi - "$work/hpi"
# 11. seven levels of nesting: nest0.jar holds nest1.jar, which holds nest2.jar, ...
for i in 6 5 4 3 2 1 0; do
    d="$work/nest$i"
    mkdir -p "$d/META-INF/maven/org.example.nest/nest$i"
    printf 'groupId=org.example.nest\nartifactId=nest%s\nversion=1.0.%s\n' "$i" "$i" \
        >"$d/META-INF/maven/org.example.nest/nest$i/pom.properties"
    [ "$i" = 6 ] || cp "$out/nest$((i + 1)).jar" "$d/"
    make "nest$i.jar" - "$d"
done
for i in 1 2 3 4 5 6; do mv "$out/nest$i.jar" "$work/"; done
