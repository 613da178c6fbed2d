/** An assets.json of every ecosystem, for the SBOM and report tests (sha256s are made up). */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export const FIXTURE_URLS: Record<string, number | undefined> = {
  'https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz': 318961,
  'https://registry.npmjs.org/@babel/core/-/core-7.24.0.tgz': 602431,
  'https://registry.npmjs.org/lodash': 118003,
  'http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10%2Bdeb12u5_amd64.deb': 315684,
  'http://deb.debian.org/debian/dists/bookworm/InRelease': 151464,
  'https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/curl-8.5.0-r0.apk': 172305,
  'https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz': 1038101,
  'https://files.pythonhosted.org/packages/f9/9b/335f9764261e915ed497fcdeb11df5dfd6f7bf257d4a6a2a686d80da4d54/requests-2.32.3-py3-none-any.whl': 64928,
  'https://repo1.maven.org/maven2/org/slf4j/slf4j-api/2.0.12/slf4j-api-2.0.12.jar': 64616,
  'https://static.crates.io/crates/serde/serde-1.0.197.crate': 77087,
  'https://proxy.golang.org/github.com/pkg/errors/@v/v0.9.1.zip': 16036,
  'https://rubygems.org/gems/rails-7.1.3.gem': 6656,
  'https://api.nuget.org/v3-flatcontainer/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg': 2562,
  'https://github.com/cli/cli/releases/download/v2.45.0/gh_2.45.0_linux_amd64.tar.gz': 11823009,
  'https://registry-1.docker.io/v2/library/debian/manifests/bookworm': 1209,
  'https://example.com/tools/thing.bin?arch=x86_64&v=1': undefined,
};

export async function writeFixture(dir: string): Promise<string> {
  const entries: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  for (const [url, size] of Object.entries(FIXTURE_URLS)) {
    entries[url] = { Sha256: sha(url), Headers: size === undefined ? { 'Content-Type': 'application/octet-stream' } : { 'Content-Length': String(size) } };
  }
  const path = join(dir, 'assets.json');
  await writeFile(path, JSON.stringify(entries, null, 2));
  return path;
}
