import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.jar.Attributes;
import java.util.jar.Manifest;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * Prints, for each archive named on the command line and every archive nested in it, the main
 * manifest attributes as java.util.jar.Manifest reads them and every pom.properties as
 * java.util.Properties reads it. One line per archive, tab-separated records:
 * "A path" starts an archive, "M name value" is a main attribute, "P entry key value" a
 * property. Values are printed with \t, \n, \r and \\ escaped.
 */
public final class JarOracle {
    private static String esc(String s) {
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
    }

    private static boolean isArchive(String name) {
        String n = name.toLowerCase();
        return n.endsWith(".jar") || n.endsWith(".war") || n.endsWith(".ear") || n.endsWith(".par")
            || n.endsWith(".sar") || n.endsWith(".jpi") || n.endsWith(".hpi");
    }

    private static void walk(String path, InputStream in, StringBuilder out) throws IOException {
        out.append("A\t").append(esc(path)).append('\n');
        ZipInputStream zin = new ZipInputStream(in);
        Map<String, byte[]> nested = new TreeMap<>();
        for (ZipEntry e = zin.getNextEntry(); e != null; e = zin.getNextEntry()) {
            if (e.isDirectory()) continue;
            String name = e.getName();
            String base = name.substring(name.lastIndexOf('/') + 1);
            byte[] data = zin.readAllBytes();
            if (name.equalsIgnoreCase("META-INF/MANIFEST.MF")) {
                Attributes main = new Manifest(new ByteArrayInputStream(data)).getMainAttributes();
                TreeMap<String, String> sorted = new TreeMap<>();
                for (Map.Entry<Object, Object> a : main.entrySet()) sorted.put(a.getKey().toString(), a.getValue().toString());
                for (Map.Entry<String, String> a : sorted.entrySet())
                    out.append("M\t").append(esc(a.getKey())).append('\t').append(esc(a.getValue())).append('\n');
            } else if (base.equals("pom.properties")) {
                Properties p = new Properties();
                p.load(new ByteArrayInputStream(data));
                for (String k : new TreeMap<>(Map.copyOf(p)).keySet().stream().map(Object::toString).toList())
                    out.append("P\t").append(esc(name)).append('\t').append(esc(k)).append('\t').append(esc(p.getProperty(k))).append('\n');
            } else if (isArchive(name)) {
                nested.put(name, data);
            }
        }
        for (Map.Entry<String, byte[]> n : nested.entrySet()) walk(path + "/" + n.getKey(), new ByteArrayInputStream(n.getValue()), out);
    }

    public static void main(String[] args) throws IOException {
        StringBuilder out = new StringBuilder();
        for (String a : args) {
            String label = a.substring(a.lastIndexOf('/') + 1);
            try (FileInputStream in = new FileInputStream(a)) {
                walk(label, in, out);
            }
        }
        System.out.print(out);
    }
}
