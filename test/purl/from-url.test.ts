import test from 'node:test';
import assert from 'node:assert/strict';
import { PackageURL } from 'packageurl-js';
import { packageOf } from '../../src/purl/from-url.js';

// The recorded sha256 of each URL's bytes (any value will do: it only reaches generic purls
// and OCI tag manifests, whose digest is the sha256 of their bytes).
const S = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

type Row = [url: string, purl: string, ecosystem: string, name: string, version: string | undefined, mutableIndex?: true];

/** Real-world download URLs of every ecosystem (SPEC §10), with the package URL each names. */
const GOLDEN: Row[] = [
  ['https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz',
   'pkg:npm/lodash@4.17.21', 'npm', 'lodash', '4.17.21'],
  ['https://registry.npmjs.org/@babel/core/-/core-7.24.0.tgz',
   'pkg:npm/%40babel/core@7.24.0', 'npm', '@babel/core', '7.24.0'],
  ['https://registry.npmjs.org/@types%2fnode',
   `pkg:generic/%40types%2Fnode?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fregistry.npmjs.org%2F%40types%252fnode`, 'npm', '@types/node', undefined, true],
  ['https://registry.npmjs.org/lodash',
   `pkg:generic/lodash?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fregistry.npmjs.org%2Flodash`, 'npm', 'lodash', undefined, true],
  ['http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10%2Bdeb12u5_amd64.deb',
   'pkg:deb/debian/curl@7.88.1-10+deb12u5?arch=amd64', 'deb', 'curl', '7.88.1-10+deb12u5'],
  ['http://archive.ubuntu.com/ubuntu/pool/main/o/openssl/libssl3_3.0.2-0ubuntu1.15_amd64.deb',
   'pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.15?arch=amd64', 'deb', 'libssl3', '3.0.2-0ubuntu1.15'],
  ['http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10+deb12u5.dsc',
   'pkg:deb/debian/curl@7.88.1-10+deb12u5?arch=source', 'deb', 'curl', '7.88.1-10+deb12u5'],
  ['http://deb.debian.org/debian-security/pool/updates/main/o/openssl/openssl_3.0.11-1~deb12u2_arm64.deb',
   'pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=arm64', 'deb', 'openssl', '3.0.11-1~deb12u2'],
  ['http://deb.debian.org/debian/dists/bookworm/InRelease',
   `pkg:generic/InRelease?checksum=sha256%3A${S}&download_url=http%3A%2F%2Fdeb.debian.org%2Fdebian%2Fdists%2Fbookworm%2FInRelease`, 'deb', 'bookworm/InRelease', undefined, true],
  ['http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz',
   `pkg:generic/Packages.xz?checksum=sha256%3A${S}&download_url=http%3A%2F%2Fdeb.debian.org%2Fdebian%2Fdists%2Fbookworm%2Fmain%2Fbinary-amd64%2FPackages.xz`, 'deb', 'bookworm/main/binary-amd64/Packages.xz', undefined, true],
  ['https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/curl-8.5.0-r0.apk',
   'pkg:apk/alpine/curl@8.5.0-r0?arch=x86_64', 'apk', 'curl', '8.5.0-r0'],
  ['https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz',
   `pkg:generic/APKINDEX.tar.gz?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fdl-cdn.alpinelinux.org%2Falpine%2Fv3.19%2Fmain%2Fx86_64%2FAPKINDEX.tar.gz`, 'apk', 'v3.19/main/x86_64/APKINDEX.tar.gz', undefined, true],
  ['https://dl-cdn.alpinelinux.org/alpine/v3.19/community/aarch64/py3-requests-2.31.0-r1.apk',
   'pkg:apk/alpine/py3-requests@2.31.0-r1?arch=aarch64', 'apk', 'py3-requests', '2.31.0-r1'],
  ['https://files.pythonhosted.org/packages/f9/9b/335f9764261e915ed497fcdeb11df5dfd6f7bf257d4a6a2a686d80da4d54/requests-2.32.3-py3-none-any.whl',
   'pkg:pypi/requests@2.32.3?file_name=requests-2.32.3-py3-none-any.whl', 'pypi', 'requests', '2.32.3'],
  ['https://files.pythonhosted.org/packages/63/70/2bf7780ad2d390a8d301ad0b550f1581eadbd9a20f896afe06353c2a2913/requests-2.32.3.tar.gz',
   'pkg:pypi/requests@2.32.3?file_name=requests-2.32.3.tar.gz', 'pypi', 'requests', '2.32.3'],
  ['https://files.pythonhosted.org/packages/4c/b9/numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
   'pkg:pypi/numpy@1.26.4?file_name=numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', 'pypi', 'numpy', '1.26.4'],
  ['https://files.pythonhosted.org/packages/4c/62/python-dateutil-2.8.2.tar.gz',
   'pkg:pypi/python-dateutil@2.8.2?file_name=python-dateutil-2.8.2.tar.gz', 'pypi', 'python-dateutil', '2.8.2'],
  ['https://pypi.org/simple/requests/',
   `pkg:generic/requests?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fpypi.org%2Fsimple%2Frequests%2F`, 'pypi', 'requests', undefined, true],
  ['https://pypi.org/pypi/requests/json',
   `pkg:generic/json?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fpypi.org%2Fpypi%2Frequests%2Fjson`, 'pypi', 'requests', undefined, true],
  ['https://repo1.maven.org/maven2/org/slf4j/slf4j-api/2.0.12/slf4j-api-2.0.12.jar',
   'pkg:maven/org.slf4j/slf4j-api@2.0.12', 'maven', 'org.slf4j:slf4j-api', '2.0.12'],
  ['https://repo.maven.apache.org/maven2/org/apache/commons/commons-lang3/3.14.0/commons-lang3-3.14.0.pom',
   'pkg:maven/org.apache.commons/commons-lang3@3.14.0?type=pom', 'maven', 'org.apache.commons:commons-lang3', '3.14.0'],
  ['https://repo1.maven.org/maven2/com/google/guava/guava/33.0.0-jre/guava-33.0.0-jre-sources.jar',
   'pkg:maven/com.google.guava/guava@33.0.0-jre?classifier=sources', 'maven', 'com.google.guava:guava', '33.0.0-jre'],
  ['https://repo1.maven.org/maven2/org/slf4j/slf4j-api/maven-metadata.xml',
   `pkg:generic/maven-metadata.xml?checksum=sha256%3A${S}&download_url=https%3A%2F%2Frepo1.maven.org%2Fmaven2%2Forg%2Fslf4j%2Fslf4j-api%2Fmaven-metadata.xml`, 'maven', 'org.slf4j:slf4j-api', undefined, true],
  ['https://maven.google.com/androidx/core/core/1.12.0/core-1.12.0.aar',
   'pkg:maven/androidx.core/core@1.12.0?type=aar', 'maven', 'androidx.core:core', '1.12.0'],
  ['https://crates.io/api/v1/crates/serde/1.0.197/download',
   'pkg:cargo/serde@1.0.197', 'cargo', 'serde', '1.0.197'],
  ['https://static.crates.io/crates/serde/serde-1.0.197.crate',
   'pkg:cargo/serde@1.0.197', 'cargo', 'serde', '1.0.197'],
  ['https://index.crates.io/se/rd/serde',
   `pkg:generic/serde?checksum=sha256%3A${S}&download_url=https%3A%2F%2Findex.crates.io%2Fse%2Frd%2Fserde`, 'cargo', 'serde', undefined, true],
  ['https://proxy.golang.org/github.com/pkg/errors/@v/v0.9.1.zip',
   'pkg:golang/github.com/pkg/errors@v0.9.1', 'golang', 'github.com/pkg/errors', 'v0.9.1'],
  ['https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.3.2.mod',
   'pkg:golang/github.com/BurntSushi/toml@v1.3.2', 'golang', 'github.com/BurntSushi/toml', 'v1.3.2'],
  ['https://proxy.golang.org/golang.org/x/sys/@v/list',
   `pkg:generic/list?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fproxy.golang.org%2Fgolang.org%2Fx%2Fsys%2F%40v%2Flist`, 'golang', 'golang.org/x/sys', undefined, true],
  ['https://proxy.golang.org/github.com/pkg/errors/@latest',
   `pkg:generic/%40latest?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fproxy.golang.org%2Fgithub.com%2Fpkg%2Ferrors%2F%40latest`, 'golang', 'github.com/pkg/errors', undefined, true],
  ['https://rubygems.org/gems/rails-7.1.3.gem',
   'pkg:gem/rails@7.1.3', 'gem', 'rails', '7.1.3'],
  ['https://rubygems.org/gems/nokogiri-1.16.2-x86_64-linux.gem',
   'pkg:gem/nokogiri@1.16.2?platform=x86_64-linux', 'gem', 'nokogiri', '1.16.2'],
  ['https://rubygems.org/gems/aws-sdk-core-3.191.0.gem',
   'pkg:gem/aws-sdk-core@3.191.0', 'gem', 'aws-sdk-core', '3.191.0'],
  ['https://index.rubygems.org/info/rails',
   `pkg:generic/rails?checksum=sha256%3A${S}&download_url=https%3A%2F%2Findex.rubygems.org%2Finfo%2Frails`, 'gem', 'rails', undefined, true],
  ['https://api.nuget.org/v3-flatcontainer/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg',
   'pkg:nuget/newtonsoft.json@13.0.3', 'nuget', 'newtonsoft.json', '13.0.3'],
  ['https://api.nuget.org/v3-flatcontainer/newtonsoft.json/index.json',
   `pkg:generic/index.json?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fapi.nuget.org%2Fv3-flatcontainer%2Fnewtonsoft.json%2Findex.json`, 'nuget', 'newtonsoft.json', undefined, true],
  ['https://www.nuget.org/api/v2/package/Newtonsoft.Json/13.0.3',
   'pkg:nuget/Newtonsoft.Json@13.0.3', 'nuget', 'Newtonsoft.Json', '13.0.3'],
  ['https://github.com/cli/cli/releases/download/v2.45.0/gh_2.45.0_linux_amd64.tar.gz',
   'pkg:github/cli/cli@v2.45.0?file_name=gh_2.45.0_linux_amd64.tar.gz', 'github', 'cli/cli', 'v2.45.0'],
  ['https://github.com/nodejs/node/archive/refs/tags/v20.11.1.tar.gz',
   'pkg:github/nodejs/node@v20.11.1', 'github', 'nodejs/node', 'v20.11.1'],
  ['https://github.com/moby/buildkit/archive/0123456789abcdef0123456789abcdef01234567.zip',
   'pkg:github/moby/buildkit@0123456789abcdef0123456789abcdef01234567', 'github', 'moby/buildkit', '0123456789abcdef0123456789abcdef01234567'],
  ['https://codeload.github.com/golang/go/tar.gz/refs/tags/go1.22.0',
   'pkg:github/golang/go@go1.22.0', 'github', 'golang/go', 'go1.22.0'],
  ['https://raw.githubusercontent.com/nvm-sh/nvm/v0.39.7/install.sh',
   'pkg:github/nvm-sh/nvm@v0.39.7#install.sh', 'github', 'nvm-sh/nvm', 'v0.39.7'],
  ['https://registry-1.docker.io/v2/library/debian/manifests/bookworm',
   `pkg:oci/debian@sha256:${S}?repository_url=docker.io%2Flibrary%2Fdebian&tag=bookworm`, 'oci', 'docker.io/library/debian', `sha256:${S}`],
  ['https://registry-1.docker.io/v2/library/debian/manifests/sha256:e97ee92bf1e11a2de654e9f3da827d8dce32b54e0490ac83bfc65c8706568116',
   'pkg:oci/debian@sha256:e97ee92bf1e11a2de654e9f3da827d8dce32b54e0490ac83bfc65c8706568116?repository_url=docker.io%2Flibrary%2Fdebian', 'oci', 'docker.io/library/debian', 'sha256:e97ee92bf1e11a2de654e9f3da827d8dce32b54e0490ac83bfc65c8706568116'],
  ['https://registry-1.docker.io/v2/library/debian/blobs/sha256:8a1e25ce7c4f75e372e9884f8f7b1bedcfe4a7a7d452eb4b0a1c7477c9a90345',
   'pkg:oci/debian@sha256:8a1e25ce7c4f75e372e9884f8f7b1bedcfe4a7a7d452eb4b0a1c7477c9a90345?repository_url=docker.io%2Flibrary%2Fdebian', 'oci', 'docker.io/library/debian', 'sha256:8a1e25ce7c4f75e372e9884f8f7b1bedcfe4a7a7d452eb4b0a1c7477c9a90345'],
  ['https://ghcr.io/v2/homebrew/core/wget/manifests/1.21.4',
   `pkg:oci/wget@sha256:${S}?repository_url=ghcr.io%2Fhomebrew%2Fcore%2Fwget&tag=1.21.4`, 'oci', 'ghcr.io/homebrew/core/wget', `sha256:${S}`],
  ['http://127.0.0.1:5000/v2/busybox/manifests/latest',
   `pkg:oci/busybox@sha256:${S}?repository_url=127.0.0.1%3A5000%2Fbusybox&tag=latest`, 'oci', '127.0.0.1:5000/busybox', `sha256:${S}`],
  ['https://quay.io/v2/prometheus/node-exporter/tags/list',
   `pkg:generic/list?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fquay.io%2Fv2%2Fprometheus%2Fnode-exporter%2Ftags%2Flist`, 'oci', 'prometheus/node-exporter', undefined, true],
  ['https://nodejs.org/dist/v20.11.1/node-v20.11.1-linux-x64.tar.xz',
   `pkg:generic/node-v20.11.1-linux-x64.tar.xz?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fnodejs.org%2Fdist%2Fv20.11.1%2Fnode-v20.11.1-linux-x64.tar.xz`, 'generic', 'node-v20.11.1-linux-x64.tar.xz', undefined],
  ['https://example.com/download?id=42',
   `pkg:generic/download?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fexample.com%2Fdownload%3Fid%3D42`, 'generic', 'download', undefined],
  ['https://example.com/',
   `pkg:generic/example.com?checksum=sha256%3A${S}&download_url=https%3A%2F%2Fexample.com%2F`, 'generic', 'example.com', undefined],
];

for (const [url, purl, ecosystem, name, version, mutableIndex] of GOLDEN) {
  test(`${url} is ${purl.split('?')[0]}`, () => {
    const got = packageOf(url, { sha256: S });
    assert.deepEqual(
      { purl: got.purl.toString(), ecosystem: got.ecosystem, name: got.name, version: got.version, mutableIndex: got.mutableIndex ?? false },
      { purl, ecosystem, name, version, mutableIndex: mutableIndex ?? false },
    );
    // Every purl we make parses back to itself (packageurl-js's own round trip).
    assert.equal(PackageURL.fromString(purl).toString(), purl);
  });
}

test('covers every ecosystem the SPEC lists, and marks the mutable indexes', () => {
  const ecosystems = new Set(GOLDEN.map((r) => r[2]));
  for (const e of ['npm', 'deb', 'apk', 'pypi', 'maven', 'cargo', 'golang', 'gem', 'nuget', 'github', 'oci', 'generic']) assert.ok(ecosystems.has(e), e);
  const indexes = GOLDEN.filter((r) => r[5]).map((r) => r[0]);
  for (const want of ['https://registry.npmjs.org/lodash', 'http://deb.debian.org/debian/dists/bookworm/InRelease', 'https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz']) {
    assert.ok(indexes.includes(want), want);
  }
});

test('a generic purl without a recorded sha256 has no checksum qualifier', () => {
  assert.equal(packageOf('https://example.com/a%20b.bin').purl.toString(), 'pkg:generic/a%20b.bin?download_url=https%3A%2F%2Fexample.com%2Fa%2520b.bin');
});

test('a URL that is no http(s) URL at all is still reported, as generic', () => {
  for (const url of ['not a url', 'ftp://example.com/x.tgz', 'https://[::1']) {
    const got = packageOf(url, { sha256: S });
    assert.equal(got.ecosystem, 'generic');
    assert.equal(got.purl.qualifiers?.['download_url'], url);
  }
});

test('shapes that look alike but are not packages stay generic', () => {
  for (const url of [
    'https://example.com/some/pool/readme.txt',
    'https://example.com/apps/x86_64/android-app.apk',
    'https://example.com/v2/',
    'https://example.com/-/x.tgz',
  ]) assert.equal(packageOf(url).ecosystem, 'generic', url);
});
