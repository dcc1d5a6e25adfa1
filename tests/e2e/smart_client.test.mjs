// A browser SMART app on another origin, as an app developer would write it: npm `fhirclient`
// (the SMART on FHIR JavaScript client) served from its own origin, in headless Debian
// Chromium, completes the citizen's login against PHR (discovery, authorization code with
// PKCE, token request) and reads Observations with the token — every call cross-origin, so
// every one goes through PHR's CORS answers. A page on an origin no application registered
// cannot read the API at all.
//
// Needs PHR_BIN (the phr binary). Starts its own server (`phr serve --demo`) and two static
// web servers on free ports.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const phr = process.env.PHR_BIN;
const DEMO_HETU = '010190-900P';
const APP_ID = 'browser-smart-app';

let server, data, base, appOrigin, otherOrigin, browser;
const webServers = [];

async function startPhr() {
  data = mkdtempSync(join(tmpdir(), 'phr-e2e-smart-'));
  server = spawn(phr, ['serve', '--demo', '--demo-days', '7', '--data', data,
    '--listen', '127.0.0.1:0'], { env: { ...process.env, PHR_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`phr did not start:\n${seen.join('\n')}`)), 240_000);
    server.on('exit', (code) => reject(new Error(`phr exited with ${code}`)));
    lines.on('line', (line) => {
      seen.push(line);
      const m = line.match(/^PHR is serving FHIR R4 at (\S+)\/fhir\/r4/);
      if (m) { base = m[1]; clearTimeout(timer); resolve(); }
    });
  });
}

const clientLibrary = readFileSync(join(here, 'node_modules/fhirclient/build/fhir-client.js'));

/** The app's pages: a launch page that starts the SMART login, and the redirect page that
 * finishes it and reads the citizen's Observations. */
function appPage(path) {
  const script = {
    '/launch.html': `FHIR.oauth2.authorize({
        iss: ${JSON.stringify(`${base}/fhir/r4`)},
        clientId: ${JSON.stringify(APP_ID)},
        scope: 'launch/patient patient/Observation.read',
        redirectUri: 'app.html',
      }).catch((e) => { document.getElementById('result').textContent = 'error: ' + e.message; });`,
    '/app.html': `FHIR.oauth2.ready()
        .then((client) => client.request('Observation?patient=' + client.patient.id + '&_count=5')
          .then((bundle) => {
            const out = document.getElementById('result');
            out.dataset.patient = client.patient.id;
            out.dataset.total = String(bundle.total);
            out.dataset.entries = String((bundle.entry || []).length);
            out.dataset.types = [...new Set((bundle.entry || []).map((e) => e.resource.resourceType))].join(',');
            out.textContent = 'read';
          }))
        .catch((e) => { document.getElementById('result').textContent = 'error: ' + e.message; });`,
  }[path];
  if (!script) return null;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Browser SMART app</title>
    <script src="/fhir-client.js"></script></head>
    <body><p id="result">starting</p><script>${script}</script></body></html>`;
}

/** A static web server on a free port of 127.0.0.1: another origin than PHR's. */
async function startWeb(pages) {
  const web = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/fhir-client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(clientLibrary);
    }
    const html = pages(path);
    if (html === null) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
  webServers.push(web);
  return `http://127.0.0.1:${web.address().port}`;
}

before(async () => {
  assert.ok(phr, 'set PHR_BIN to the phr binary');
  await startPhr();
  appOrigin = await startWeb(appPage);
  otherOrigin = await startWeb((path) => (path === '/' ? '<!doctype html><title>other</title>' : null));
  // Registered while the server runs, as a developer would: its origin may call at once.
  execFileSync(phr, ['app', 'register', '--data', data, '--id', APP_ID, '--name', 'Browser SMART app',
    '--scope', 'launch/patient patient/Observation.read', '--redirect-uri', `${appOrigin}/app.html`,
    '--sandbox'], { encoding: 'utf8' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const web of webServers) web.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  if (data) rmSync(data, { recursive: true, force: true });
});

test('fhirclient on another origin logs the citizen in and reads Observations', async () => {
  const context = await browser.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  const crossOrigin = [];
  // The app's script calls (fhirclient uses XMLHttpRequest or fetch), not page navigations.
  page.on('request', (r) => {
    if (r.url().startsWith(base) && ['xhr', 'fetch'].includes(r.resourceType())) crossOrigin.push(`${r.method()} ${r.url()}`);
  });
  await page.goto(`${appOrigin}/launch.html`);
  // PHR's own pages: the sandbox identity provider, the terms for a first login, the consent.
  await page.getByLabel(/identity code/i).fill(DEMO_HETU);
  await page.getByRole('button', { name: 'Identify' }).click();
  await page.waitForURL((url) => url.pathname !== '/oauth/login');
  if (await page.getByRole('button', { name: /accept/i }).count()) {
    await page.getByRole('button', { name: /accept/i }).first().click();
  }
  await page.locator('button[name="decision"][value="allow"]').click();
  await page.waitForURL(`${appOrigin}/app.html**`);
  const result = page.locator('#result');
  await result.filter({ hasText: /read|error/ }).waitFor();
  assert.equal(await result.textContent(), 'read');
  assert.ok(Number(await result.getAttribute('data-total')) > 0, 'the demo citizen has Observations');
  assert.equal(await result.getAttribute('data-entries'), '5');
  assert.equal(await result.getAttribute('data-types'), 'Observation');
  // Discovery, the token request and the search were all the app's own cross-origin calls.
  for (const call of ['GET /fhir/r4/.well-known/smart-configuration', 'POST /oauth/token', 'GET /fhir/r4/Observation?']) {
    const [method, path] = call.split(' ');
    assert.ok(crossOrigin.some((c) => c.startsWith(`${method} ${base}${path}`)), `${call} in:\n${crossOrigin.join('\n')}`);
  }
  await context.close();
});

test('a page on an origin no application registered cannot read the API', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${otherOrigin}/`);
  const outcome = await page.evaluate(async (api) => {
    try {
      const response = await fetch(`${api}/Observation?patient=x`, { headers: { Authorization: 'Bearer x' } });
      return `answered ${response.status}`;
    } catch (e) {
      return `refused: ${e.name}`;
    }
  }, `${base}/fhir/r4`);
  assert.equal(outcome, 'refused: TypeError', 'the preflight must be refused');
  // The public discovery document is readable from anywhere.
  const metadata = await page.evaluate(async (api) => (await fetch(`${api}/metadata`)).status, `${base}/fhir/r4`);
  assert.equal(metadata, 200);
  await context.close();
});
