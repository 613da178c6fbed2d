import test from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';
import { tempDir } from '../helpers/tmp.js';
import { cliCommand, repoRoot, run } from '../helpers/cli.js';
import { report } from '../../src/commands/report.js';
import { FIXTURE_URLS, writeFixture } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
/** Screenshots are kept here (CI can upload the folder). */
const OUTPUT = process.env['HTVEND_TEST_OUTPUT'] ?? join(repoRoot, 'test-output');

const buildReport = {
  version: 1,
  dockerfile: 'Dockerfile',
  attribution: { available: true, mode: 'build' },
  cache: { enabled: false },
  durationMs: 1234,
  steps: [
    { platform: 'linux/amd64', stage: 0, location: 'Dockerfile:1', line: 1, instruction: 'FROM debian:bookworm', kind: 'FROM', status: 'run', durationMs: 10, layer: null, assets: [] },
    {
      platform: 'linux/amd64', stage: 0, location: 'Dockerfile:2', line: 2, instruction: 'RUN apt-get update && apt-get install -y curl', kind: 'RUN', status: 'run', durationMs: 900, layer: null,
      assets: [{ url: 'http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10%2Bdeb12u5_amd64.deb', sha256: 'ab'.repeat(32), size: 315684 }],
    },
  ],
};

async function writeInputs(dir: string): Promise<{ manifest: string; build: string; offline: string; ghOutput: string }> {
  const manifest = await writeFixture(dir);
  const build = join(dir, 'build-report.json');
  await writeFile(build, JSON.stringify(buildReport));
  const offline = join(dir, 'offline.log');
  await writeFile(offline, 'htvend: offline: 3 response(s) replayed, 2 URL(s) missing\nhtvend: WARN: missing asset: https://example.org/new.tgz\nhtvend: WARN: missing asset: https://example.org/<b>x</b>\n');
  const ghOutput = join(dir, 'gh-output');
  await writeFile(ghOutput, 'htvend_missing_asset_total=2\nhtvend_replayed_total=3\n');
  return { manifest, build, offline, ghOutput };
}

test('the report is one self-contained file: no network resources, same bytes every time', async (t) => {
  const dir = await tempDir(t);
  const i = await writeInputs(dir);
  await report({ manifestPath: i.manifest, output: join(dir, 'a.html'), buildReport: i.build, offlineSummaries: [i.offline, i.ghOutput] });
  await report({ manifestPath: i.manifest, output: join(dir, 'b.html'), buildReport: i.build, offlineSummaries: [i.offline, i.ghOutput] });
  const html = await readFile(join(dir, 'a.html'), 'utf8');
  assert.equal(html, await readFile(join(dir, 'b.html'), 'utf8'));
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.doesNotMatch(html, /<(script|link|img|iframe)[^>]+(src|href)=/i, 'nothing is loaded from elsewhere');
  assert.doesNotMatch(html, /<b>x<\/b>/, 'URLs are escaped');
});

test('bad inputs to htvend report name the file and leave no output', async (t) => {
  const dir = await tempDir(t);
  const i = await writeInputs(dir);
  const htvend = cliCommand('htvend');
  await writeFile(join(dir, 'bad-report.json'), '{"steps": 3}');
  let r = await run([...htvend, 'report', '-m', i.manifest, '--build-report', join(dir, 'bad-report.json'), '-o', join(dir, 'r.html')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--build-report .*bad-report\.json: expected the builder's --report JSON/);
  r = await run([...htvend, 'report', '-m', join(dir, 'nope.json'), '-o', join(dir, 'r.html')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nope\.json does not exist/);
  r = await run([...htvend, 'report', '-m', i.manifest, '--offline-summary', join(dir, 'none.log'), '-o', join(dir, 'r.html')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--offline-summary .*none\.log/);
  await assert.rejects(access(join(dir, 'r.html')));
  assert.ok(!(await readdir(dir)).some((f) => f.endsWith('.tmp')));
});

test('headless Chromium opens the report: no console errors, one row per asset, charts drawn, sorting and filtering work', async (t) => {
  try {
    await access(CHROMIUM);
  } catch {
    t.skip(`${CHROMIUM} is not installed (scripts/setup.sh installs it)`);
    return;
  }
  const dir = await tempDir(t);
  const i = await writeInputs(dir);
  const out = join(dir, 'report.html');
  const r = await run([...cliCommand('htvend'), 'report', '-m', i.manifest, '--build-report', i.build, '--offline-summary', i.offline, '--offline-summary', i.ghOutput, '-o', out]);
  assert.equal(r.code, 0, r.stderr);

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    timeout: 60_000,
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${String(e)}`));
  const requests: string[] = [];
  page.on('request', (req) => requests.push(req.url()));
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(pathToFileURL(out).href, { waitUntil: 'load', timeout: 30_000 });

  const n = Object.keys(FIXTURE_URLS).length;
  assert.equal(await page.$$eval('#asset-table tbody tr', (rows) => rows.length), n, 'one row per asset');
  assert.equal(await page.$eval('#shown', (e) => e.textContent), `${n} of ${n} shown`);
  const bars = await page.$$eval('#chart-ecosystem rect', (rs) => rs.map((r) => (r as unknown as { getBBox(): { width: number } }).getBBox().width));
  assert.ok(bars.length >= 10 && bars.every((w) => w >= 0) && bars.some((w) => w > 100), `ecosystem chart drawn: ${bars.join(',')}`);
  assert.ok((await page.$$eval('#chart-host rect', (rs) => rs.length)) >= 5, 'host chart drawn');
  assert.equal(await page.$$eval('#offline li', (l) => l.length), 2);
  assert.equal(await page.$$eval('#steps details', (l) => l.length), 2);

  // Sort by size, descending: the GitHub release (11.8 MB) comes first.
  await page.click('th[data-col="3"]');
  await page.click('th[data-col="3"]');
  assert.match(await page.$eval('#asset-table tbody tr td.url', (e) => e.textContent ?? ''), /releases\/download/);
  // Filter by text, then by ecosystem.
  await page.type('#filter', 'curl');
  assert.equal(await page.$eval('#shown', (e) => e.textContent), `2 of ${n} shown`);
  await page.select('#ecosystem', 'apk');
  assert.equal(await page.$eval('#shown', (e) => e.textContent), `1 of ${n} shown`);
  await page.$eval('#filter', (e) => ((e as unknown as { value: string }).value = ''));
  await page.select('#ecosystem', '');

  await mkdir(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'htvend-report.png') as `${string}.png`, fullPage: true });
  assert.deepEqual(problems, []);
  assert.deepEqual(requests.filter((u) => !u.startsWith('file:')), [], 'the page fetched nothing from the network');
});
