// Browser walk through the developer console in headless Debian Chromium: a developer signs
// in, registers a sandbox application, the application (with a token minted by `phr token`)
// sends a resource that is invalid, the developer finds the rejection with its issue and
// FHIRPath in the console, and runs the acceptance report of the data content. axe-core
// checks every console page for serious or critical violations.
//
// Needs PHR_BIN (the phr binary). Starts its own sandbox server on a free port with a
// temporary data folder (no demo data: nothing but this test's application).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'output');
const phr = process.env.PHR_BIN;
const HETU = '010190-933S';
const SCOPE = 'patient/Observation.cruds patient/Patient.read';

let server, data, base, browser, context, page, appId;
const axeResults = [];

async function startServer() {
  data = mkdtempSync(join(tmpdir(), 'phr-e2e-dev-'));
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

/** A sandbox token of the test citizen for the registered app: [patient id, token]. */
function phrToken(app) {
  const out = execFileSync(phr, ['token', '--data', data, '--hetu', HETU, '--app', app,
    '--scope', SCOPE, '--public-url', base], { encoding: 'utf8' });
  const lines = out.trim().split('\n');
  const patient = lines.find((l) => l.startsWith('patient: ')).slice('patient: '.length);
  return [patient, lines.pop()];
}

/** A blood glucose reading under the Kanta profile. */
function glucose(patient, when, mmol) {
  return {
    resourceType: 'Observation',
    meta: { profile: ['http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose'] },
    language: 'fi',
    text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">Verensokeri ${mmol} mmol/l</div>` },
    identifier: [{ system: 'urn:ietf:rfc:3986', value: `urn:uuid:${randomUUID()}` }],
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '14745-4', display: 'Glucose [Moles/volume] in Body fluid' }] },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: when,
    issued: when,
    performer: [{ reference: `Patient/${patient}` }],
    valueQuantity: { value: mmol, unit: 'mmol/l', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  };
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

test('a developer signs in and registers a sandbox application', async () => {
  await page.goto(`${base}/developer?lang=en`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await checkA11y('console sign-in');
  await page.getByLabel('E-mail address').fill('not an address');
  // The browser's own check would stop the form; the server's answer is what is tested.
  await page.locator('form').evaluate((form) => { form.noValidate = true; });
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByText('Enter an e-mail address').waitFor();
  await checkA11y('console sign-in with an error');
  await page.getByLabel('E-mail address').fill('developer@example.fi');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Your applications' }).waitFor();
  await page.getByText('You have not registered any applications yet.').waitFor();
  await checkA11y('console applications');

  await page.getByRole('link', { name: 'Register a sandbox application' }).click();
  await checkA11y('console registration');
  await page.getByLabel('Application name').fill('Sokerikirja');
  await page.getByLabel('Redirect URIs').fill('http://127.0.0.1:9/callback');
  await page.getByLabel('Scopes').fill(SCOPE);
  await page.getByLabel('Public (PKCE, no secret)').check();
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Application registered' }).waitFor();
  appId = (await page.locator('#client-id').textContent()).trim();
  assert.ok(appId.length > 0);
  await checkA11y('console registered');
});

test('the developer finds the rejected resource with its issue, and runs the acceptance report', async () => {
  const [patient, token] = phrToken(appId);
  const bad = glucose(patient, '2026-11-02T08:00:00+02:00', 7.5);
  bad.status = 'almost-final';
  const refused = await fetch(`${base}/fhir/r4/Observation`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify(bad),
  });
  assert.equal(refused.status, 422);
  const outcome = await refused.json();
  const expressions = outcome.issue.flatMap((i) => i.expression ?? []);
  assert.ok(expressions.length > 0, JSON.stringify(outcome));

  await page.goto(`${base}/developer`);
  await page.getByRole('link', { name: 'Sokerikirja' }).click();
  await page.getByRole('heading', { name: 'Sandbox traffic' }).waitFor();
  const traffic = page.locator('table', { has: page.getByRole('columnheader', { name: 'Interaction' }) });
  await traffic.getByRole('cell', { name: '422', exact: true }).waitFor();
  const rejection = page.locator('section.rejection').first();
  await rejection.getByRole('heading', { name: 'Observation create → 422' }).waitFor();
  await rejection.getByText('http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose').waitFor();
  await rejection.getByRole('cell', { name: expressions[0], exact: true }).first().waitFor();
  const html = await page.content();
  assert.ok(!html.includes(HETU) && !html.includes(token), 'no identity code or token on the console');
  await checkA11y('console application traffic');
  await page.screenshot({ path: join(output, 'developer-traffic.png'), fullPage: true });

  await page.getByLabel('Data content').selectOption('blood-glucose');
  await page.getByRole('button', { name: 'Run the checks' }).click();
  await page.getByRole('heading', { name: /Acceptance report: Sokerikirja/ }).waitFor();
  await page.getByRole('status').getByText('Some checks failed.').waitFor();
  const valid = page.locator('#check-valid-resources');
  await valid.getByText('failed').waitFor();
  const failed = page.locator('section', { has: page.locator('#failed-valid-resources') });
  await failed.getByText(expressions[0]).first().waitFor();
  await checkA11y('console acceptance report');
  await page.screenshot({ path: join(output, 'developer-report.png'), fullPage: true });
});
