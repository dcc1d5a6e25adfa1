// Browser walk through the operator page in headless Debian Chromium: the operator signs in
// with a one-time link from `phr operator login`, opens a sandbox application, reads its
// acceptance report, records a joint-testing round and accepts a data content, in English and
// in Finnish; the used link signs no one in again. axe-core checks every operator page for
// serious or critical violations.
//
// Needs PHR_BIN (the phr binary). Starts its own sandbox server on a free port with a
// temporary data folder.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'output');
const phr = process.env.PHR_BIN;

let server, data, base, browser, context, page, link;
const axeResults = [];

async function startServer() {
  data = mkdtempSync(join(tmpdir(), 'phr-e2e-operator-'));
  server = spawn(phr, ['serve', '--data', data, '--listen', '127.0.0.1:0'],
    { env: { ...process.env, PHR_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`phr did not start:\n${seen.join('\n')}`)), 120_000);
    server.on('exit', (code) => reject(new Error(`phr exited with ${code}`)));
    lines.on('line', (line) => {
      seen.push(line);
      const m = line.match(/^PHR is serving FHIR R4 at (\S+)\/fhir\/r4/);
      if (m) { base = m[1]; clearTimeout(timer); resolve(); }
    });
  });
}

/** Runs an operator command on the server's data folder; returns its standard output. */
function operatorCommand(args) {
  return execFileSync(phr, [...args, '--data', data, '--public-url', base], { encoding: 'utf8' });
}

/** axe-core on the current page: no serious or critical violations. */
async function checkA11y(name) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  axeResults.push({ name, violations: bad.length });
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), [],
    `accessibility violations on ${name}`);
}

before(async () => {
  assert.ok(phr, 'set PHR_BIN to the phr binary');
  mkdirSync(output, { recursive: true });
  await startServer();
  operatorCommand(['app', 'register', '--sandbox', '--id', 'sokeri-app', '--name', 'Sokerikirja',
    '--scope', 'patient/Observation.cruds patient/Patient.read',
    '--redirect-uri', 'http://127.0.0.1:9/callback']);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (data) rmSync(data, { recursive: true, force: true });
  console.log('axe checks:', JSON.stringify(axeResults));
});

test('the operator signs in with a one-time link', async () => {
  await page.goto(`${base}/operator?lang=en`);
  await page.getByRole('heading', { name: 'Operator sign-in' }).waitFor();
  await page.getByText('phr operator login').waitFor();
  await checkA11y('operator signed out');

  link = operatorCommand(['operator', 'login']).split('\n').find((l) => l.includes('/operator/login?link='));
  assert.ok(link, 'phr operator login prints a link');
  await page.goto(link);
  await checkA11y('operator sign-in form');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Applications' }).waitFor();
  await page.locator('#app-sokeri-app').getByRole('cell', { name: 'sandbox', exact: true }).waitFor();
  await checkA11y('operator applications');
});

test('the operator reads the report, records a round and accepts a content', async () => {
  await page.getByRole('link', { name: 'Sokerikirja' }).click();
  await page.getByRole('heading', { name: 'Sokerikirja' }).waitFor();
  await checkA11y('operator application');

  await page.locator('#report-content').selectOption('blood-glucose');
  await page.getByRole('button', { name: 'Show the report' }).click();
  await page.getByRole('heading', { name: /Acceptance report: Sokerikirja/ }).waitFor();
  await page.locator('#check-withdrawn-grant').getByText('not yet observed').waitFor();
  await checkA11y('operator acceptance report');
  await page.getByRole('link', { name: 'Back to the application' }).click();

  await page.locator('#round-content').selectOption('blood-glucose');
  await page.locator('#outcome-pass').check();
  await page.getByLabel('Note').fill('hourly sync and paging fine');
  await page.getByRole('button', { name: 'Record the round' }).click();
  const rounds = page.locator('table', { has: page.getByRole('columnheader', { name: 'Round' }) });
  await rounds.getByRole('cell', { name: 'hourly sync and paging fine' }).waitFor();

  await page.locator('#accept-content').selectOption('blood-glucose');
  await page.getByRole('button', { name: 'Accept', exact: true }).click();
  await page.locator('#status').getByText('accepted').waitFor();
  const shown = JSON.parse(operatorCommand(['app', 'show', 'sokeri-app', '--json']));
  assert.equal(shown.status, 'accepted');
  assert.equal(shown.contents[0].content, 'blood-glucose');
  assert.equal(shown.rounds[0].outcome, 'pass');
  await checkA11y('operator application accepted');
  await page.screenshot({ path: join(output, 'operator-app.png'), fullPage: true });

  await page.goto(`${base}/operator/apps/sokeri-app?lang=fi`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'fi');
  await page.getByRole('heading', { name: 'Hyväksytyt tietosisällöt' }).waitFor();
  await checkA11y('operator application in Finnish');
});

test('the used link signs no one in again, and signing out ends the session', async () => {
  const other = await browser.newContext({ locale: 'en-GB' });
  const second = await other.newPage();
  await second.goto(link);
  await second.getByRole('button', { name: /Sign in|Kirjaudu/ }).click();
  await second.getByRole('alert').waitFor();
  assert.match(await second.content(), /has been used or it has expired|on jo käytetty/);
  await other.close();

  await page.goto(`${base}/operator?lang=en`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Operator sign-in' }).waitFor();
});
