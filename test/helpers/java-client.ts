/**
 * A tiny Java 17 HTTP(S) client for tests, run as a single-file source program
 * (`java Client.java URL [OUTFILE]`). It uses HttpURLConnection, so it honours the standard
 * `-Dhttp(s).proxyHost/Port` and `-Djavax.net.ssl.trustStore*` system properties, including
 * ones given through JAVA_TOOL_OPTIONS. Prints the body to stdout (or writes OUTFILE).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const SOURCE = `
import java.io.*;
import java.net.*;

public class Client {
  public static void main(String[] args) throws Exception {
    HttpURLConnection c = (HttpURLConnection) new URL(args[0]).openConnection();
    int status = c.getResponseCode();
    if (status != 200) { System.err.println("status " + status); System.exit(3); }
    OutputStream out = args.length > 1 ? new FileOutputStream(args[1]) : System.out;
    try (InputStream in = c.getInputStream()) { in.transferTo(out); }
    out.flush();
    if (out != System.out) out.close();
  }
}
`;

/** Writes Client.java into `dir`; returns its path. */
export async function writeJavaClient(dir: string): Promise<string> {
  const file = join(dir, 'Client.java');
  await writeFile(file, SOURCE);
  return file;
}
