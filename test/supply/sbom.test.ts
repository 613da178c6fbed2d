import test from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import Ajv2019 from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { tempDir } from '../helpers/tmp.js';
import { cliCommand, repoRoot, run } from '../helpers/cli.js';
import { renderSbom } from '../../src/commands/sbom.js';
import { FIXTURE_URLS, writeFixture } from './fixture.js';

const env = { SOURCE_DATE_EPOCH: '1700000000' };

test('CycloneDX output passes the CycloneDX library\'s strict 1.6 validator, one component per asset', async (t) => {
  const manifest = await writeFixture(await tempDir(t));
  const text = await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env });
  const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text);
  assert.equal(errors, null, JSON.stringify(errors));
  const bom = JSON.parse(text);
  assert.equal(bom.specVersion, '1.6');
  assert.equal(bom.metadata.timestamp, '2023-11-14T22:13:20.000Z');
  assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(bom.components.length, Object.keys(FIXTURE_URLS).length);
  const babel = bom.components.find((c: { purl: string }) => c.purl === 'pkg:npm/%40babel/core@7.24.0');
  assert.ok(babel, 'the scoped npm tarball is a component');
  assert.equal(babel.type, 'library');
  assert.deepEqual(babel.externalReferences, [{ type: 'distribution', url: 'https://registry.npmjs.org/@babel/core/-/core-7.24.0.tgz' }]);
  assert.equal(babel.hashes[0].alg, 'SHA-256');
  assert.ok(babel.properties.some((p: { name: string; value: string }) => p.name === 'htvend:size' && p.value === '602431'));
  const inRelease = bom.components.find((c: { 'bom-ref': string }) => c['bom-ref'] === 'http://deb.debian.org/debian/dists/bookworm/InRelease');
  assert.equal(inRelease.type, 'data', 'a mutable index is data, not a library');
  assert.ok(inRelease.properties.some((p: { name: string }) => p.name === 'htvend:mutable-index'));
});

test('SPDX output validates against the official SPDX 2.3 JSON schema', async (t) => {
  const manifest = await writeFixture(await tempDir(t));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const doc: any = JSON.parse(await renderSbom({ manifestPath: manifest, format: 'spdx', env }));
  const schema = JSON.parse(await readFile(join(repoRoot, 'test', 'supply', 'fixtures', 'spdx-2.3.schema.json'), 'utf8'));
  const ajv = new Ajv2019.default({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const validate = ajv.compile(schema);
  const valid: boolean = validate(structuredClone(doc));
  assert.ok(valid, JSON.stringify(validate.errors));
  assert.equal(doc.creationInfo.created, '2023-11-14T22:13:20Z');
  assert.equal(doc.packages.length, Object.keys(FIXTURE_URLS).length);
  const deb = doc.packages.find((p: { name: string; versionInfo?: string }) => p.name === 'curl' && p.versionInfo === '7.88.1-10+deb12u5');
  assert.deepEqual(deb.externalRefs, [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:deb/debian/curl@7.88.1-10+deb12u5?arch=amd64' }]);
  assert.equal(deb.downloadLocation, 'http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10%2Bdeb12u5_amd64.deb');
  assert.match(deb.comment, /size: 315684 bytes/);
  assert.equal(doc.relationships.length, doc.packages.length);
});

test('both formats are byte-identical for the same inputs, and the serial follows the content', async (t) => {
  const dir = await tempDir(t);
  const manifest = await writeFixture(dir);
  for (const format of ['cyclonedx', 'spdx'] as const) {
    const a = await renderSbom({ manifestPath: manifest, format, env });
    const b = await renderSbom({ manifestPath: manifest, format, env });
    assert.equal(a, b, format);
  }
  // The same entries in another key order are the same assets.json: same SBOM.
  const entries = Object.entries(JSON.parse(await readFile(manifest, 'utf8'))).reverse();
  const reversed = join(dir, 'reversed', 'assets.json');
  await mkdir(join(dir, 'reversed'));
  await writeFile(reversed, JSON.stringify(Object.fromEntries(entries)));
  assert.equal(await renderSbom({ manifestPath: reversed, format: 'cyclonedx', env }), await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env }));
  // Another SOURCE_DATE_EPOCH is another document, so another serial number.
  const other = JSON.parse(await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env: { SOURCE_DATE_EPOCH: '1700000001' } }));
  const first = JSON.parse(await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env }));
  assert.notEqual(other.serialNumber, first.serialNumber);
  // Without SOURCE_DATE_EPOCH there is no clock in the output either.
  const x = await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env: {} });
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env: {} }), x);
  assert.equal(JSON.parse(x).metadata.timestamp, undefined);
});

test('htvend sbom: bad input names what is wrong and writes nothing', async (t) => {
  const dir = await tempDir(t);
  const manifest = await writeFixture(dir);
  const htvend = cliCommand('htvend');

  await writeFile(join(dir, 'broken.json'), '{"https://x": {"Sha256": ');
  let r = await run([...htvend, 'sbom', '-m', join(dir, 'broken.json'), '--format', 'spdx', '-o', join(dir, 'out.json')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /broken\.json:1:\d+/);

  r = await run([...htvend, 'sbom', '-m', manifest, '--format', 'swid', '-o', join(dir, 'out.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--format.*'swid' is invalid.*cyclonedx, spdx/);

  // Unwritable: a directory that is in the way (root may write anywhere, so no chmod test).
  const ro = join(dir, 'ro');
  await mkdir(join(ro, 'bom.json'), { recursive: true });
  r = await run([...htvend, 'sbom', '-m', manifest, '--format', 'cyclonedx', '-o', join(ro, 'bom.json')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot write .*ro\/bom\.json/);
  r = await run([...htvend, 'sbom', '-m', manifest, '--format', 'cyclonedx', '-o', join(dir, 'missing-dir', 'bom.json')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot write .*missing-dir\/bom\.json/);

  assert.deepEqual((await readdir(dir)).sort(), ['assets.json', 'broken.json', 'ro'], 'no output and no temp file was left');
  assert.deepEqual(await readdir(ro), ['bom.json'], 'no temp file next to the directory in the way');

  r = await run([...htvend, 'sbom', '-m', manifest, '--format', 'cyclonedx', '-o', join(dir, 'bom.json')], { env: { ...process.env, ...env } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readFile(join(dir, 'bom.json'), 'utf8'), await renderSbom({ manifestPath: manifest, format: 'cyclonedx', env }));
});
