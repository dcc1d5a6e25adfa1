// Browser walk through the citizen portal ("My PHR") in headless Debian Chromium:
// login -> take the service into use -> chart with demo data -> enter a weight -> delete it
// -> withdraw an app (its token then gets 401) -> share blood pressure only with Demo Health
// Centre, see it (and not glucose) in the professional viewer, withdraw, the viewer refused
// -> access log naming the organisation and the professional -> export. axe-core checks every page for serious or critical violations; screenshots of
// the overview and a chart page are saved under tests/e2e/output/.
//
// Needs PHR_BIN (the phr binary). Starts its own server on a free port with a temporary
// data folder and a short demo period.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'output');
const phr = process.env.PHR_BIN;
const DEMO_HETU = '010190-900P';

let server, data, base, browser, context, page, patientId, token;
const axeResults = [];

/** A test identity (individual number 900-999) of someone born on 15 June 1995. */
function freshTestHetu() {
  const digits = '150695';
  const individual = String(900 + Math.floor(Math.random() * 99));
  const check = '0123456789ABCDEFHJKLMNPRSTUVWXY'[Number(digits + individual) % 31];
  return `${digits}-${individual}${check}`;
}

async function startServer() {
  data = mkdtempSync(join(tmpdir(), 'phr-e2e-'));
  server = spawn(phr, ['serve', '--demo', '--demo-days', '21', '--data', data,
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
      if (m) base = m[1];
      const p = line.match(new RegExp(`^\\s+${DEMO_HETU}\\s.*Patient/(\\S+)`));
      if (p) patientId = p[1];
      if (base && patientId) { clearTimeout(timer); resolve(); }
    });
  });
}

function phrToken() {
  const out = execFileSync(phr, ['token', '--data', data, '--hetu', DEMO_HETU, '--app', 'demo-app',
    '--scope', 'patient/Observation.read patient/Patient.read', '--public-url', base], { encoding: 'utf8' });
  return out.trim().split('\n').pop();
}

async function api(path) {
  return fetch(`${base}/fhir/r4/${path}`, { headers: { Authorization: `Bearer ${token}` } });
}

/** axe-core on the current page: no serious or critical violations. */
async function checkA11y(name) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  axeResults.push({ name, violations: bad.length });
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), [],
    `accessibility violations on ${name}`);
}

async function nav(label) {
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: label }).click();
}

async function noHetuInPage() {
  const html = await page.content();
  assert.ok(!html.includes(DEMO_HETU), `the page ${page.url()} shows an identity code`);
  assert.ok(!page.url().includes(DEMO_HETU));
}

async function login(hetu) {
  await page.goto(`${base}/portal?lang=en`);
  await page.getByRole('link', { name: 'Log in' }).click();
  await page.getByLabel(/identity code/i).fill(hetu);
  await page.getByRole('button', { name: 'Identify' }).click();
}

before(async () => {
  assert.ok(phr, 'set PHR_BIN to the phr binary');
  rmSync(output, { recursive: true, force: true });
  mkdirSync(output, { recursive: true });
  await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context = await browser.newContext({ acceptDownloads: true, locale: 'fi-FI', viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (data) rmSync(data, { recursive: true, force: true });
  console.log('axe checks:', JSON.stringify(axeResults));
});

test('a new citizen takes the service into use', async () => {
  await page.goto(`${base}/`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'fi');
  await checkA11y('landing (fi)');
  // Keyboard: the first Tab reaches the skip link.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  await page.getByRole('link', { name: 'In English' }).click();
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await login(freshTestHetu());
  // First visit: the terms of use.
  await checkA11y('terms');
  await page.getByRole('button', { name: /accept the terms/i }).click();
  await page.waitForURL(`${base}/portal`);
  await page.getByRole('heading', { name: 'Your wellbeing data' }).waitFor();
  await page.getByText('You have no stored data yet.').waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByText('You have logged out.').waitFor();
});

test('the demo citizen sees the overview and a chart of their data', async () => {
  await login(DEMO_HETU);
  await page.waitForURL(`${base}/portal`);
  const table = page.locator('main table');
  await table.getByRole('link', { name: 'Blood glucose', exact: true }).waitFor();
  await checkA11y('overview');
  await noHetuInPage();
  await page.screenshot({ path: join(output, 'overview.png'), fullPage: true });
  // On a phone the page reflows: nothing but the tables' own scroll areas is wider than
  // the screen.
  await page.setViewportSize({ width: 360, height: 740 });
  await page.reload();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
    'no horizontal scrolling on a phone');
  await page.screenshot({ path: join(output, 'overview-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });

  await table.getByRole('link', { name: 'Blood glucose', exact: true }).click();
  await page.getByRole('heading', { name: 'Blood glucose', level: 1 }).waitFor();
  const chart = page.locator('svg.chart');
  await chart.waitFor();
  assert.ok(await chart.locator('polyline').count() >= 1, 'a glucose line');
  assert.ok(await chart.locator('rect').count() >= 1, 'the target band');
  await checkA11y('glucose chart');
  await page.screenshot({ path: join(output, 'chart-glucose.png'), fullPage: true });
  await page.getByRole('link', { name: 'Week', exact: true }).click();
  await chart.waitFor();

  await page.goto(`${base}/portal/data/steps`);
  assert.ok(await page.locator('svg.chart rect').count() > 5, 'daily step bars');
  await page.goto(`${base}/portal/data/body-weight?range=year`);
  await page.locator('svg.chart polyline').waitFor();
  await checkA11y('weight chart');
  await page.screenshot({ path: join(output, 'chart-weight.png'), fullPage: true });
  // A bad custom range is explained, not an error.
  await page.goto(`${base}/portal/data/body-weight?range=custom&from=2026-99-01&to=x`);
  await page.locator('#range-error').waitFor();
});

let enteredId;

test('the citizen enters a weight and then deletes it', async () => {
  await nav('Enter a measurement');
  await checkA11y('enter: choose');
  await page.getByRole('link', { name: 'Body weight' }).click();
  await page.getByLabel('Weight (kg)').fill('abc');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#weight-error').waitFor();
  assert.equal(await page.getByLabel('Weight (kg)').getAttribute('aria-invalid'), 'true');
  await checkA11y('enter: errors');
  await page.getByLabel('Weight (kg)').fill('81.3');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('The measurement was saved.').waitFor();
  await page.getByText('81.3 kg').first().waitFor();
  await page.getByText('Omakanta / My PHR').first().waitFor();
  await checkA11y('entry detail');
  enteredId = page.url().match(/\/portal\/entry\/Observation\/([^?]+)/)[1];

  token = phrToken();
  let res = await api(`Observation/${enteredId}`);
  assert.equal(res.status, 200, 'the app sees the entered weight');
  const stored = await res.json();
  assert.equal(stored.valueQuantity.value, 81.3);

  await page.getByRole('link', { name: 'Delete this entry' }).click();
  await checkA11y('delete: confirm');
  await page.getByRole('button', { name: 'Delete permanently' }).click();
  await page.getByText('Entries deleted: 1').waitFor();
  res = await api(`Observation/${enteredId}`);
  assert.equal(res.status, 404, 'erased, not just deleted');
  res = await api(`Observation/${enteredId}/_history`);
  assert.ok(res.status === 404 || (await res.json()).total === 0, 'no versions left');
  res = await api(`Observation?patient=${patientId}&code=http://loinc.org|29463-7&_count=500`);
  const bundle = await res.json();
  assert.ok(!(bundle.entry || []).some((e) => e.resource.id === enteredId), 'not found by search');

  await nav('Delete data');
  await checkA11y('delete: overview');
  // Deleting everything needs the explicit confirmation.
  await page.getByRole('button', { name: 'Delete permanently' }).click();
  await page.locator('#confirm-error').waitFor();
});

test('withdrawing an application stops its token at once', async () => {
  assert.equal((await api(`Patient/${patientId}`)).status, 200);
  await nav('Applications');
  const card = page.locator('section.card', { has: page.getByRole('heading', { name: 'PHR Demo' }) });
  await card.waitFor();
  await checkA11y('applications');
  await card.getByRole('button', { name: 'Withdraw rights' }).click();
  await page.getByText("The application's rights were withdrawn.").waitFor();
  assert.equal(await page.locator('section.card', { has: page.getByRole('heading', { name: 'PHR Demo' }) }).count(), 0);
  assert.equal((await api(`Patient/${patientId}`)).status, 401);
});

test('the citizen shares blood pressure only; the professional viewer shows it, and is refused after withdrawal', async () => {
  // The demo citizen shares blood pressure and glucose with Demo Health Centre.
  await nav('Sharing');
  await page.getByText('You have consented').waitFor();
  await checkA11y('sharing');
  await page.getByLabel('Only the data I choose:').check();
  await page.getByLabel('Blood glucose', { exact: true }).uncheck();
  await page.getByLabel('Blood pressure', { exact: true }).check();
  await page.getByRole('button', { name: 'Save consent' }).click();
  await page.getByText('Consent given.').waitFor();
  const shared = await page.locator('#shared-contents').textContent();
  assert.ok(shared.includes('Blood pressure') && !shared.includes('Blood glucose'), shared);

  // A test professional of Demo Health Centre signs in to the viewer and looks the citizen up.
  const pro = await (await browser.newContext({ locale: 'en-GB' })).newPage();
  await pro.goto(`${base}/viewer`);
  await pro.getByRole('link', { name: 'Sign in as a test professional' }).click();
  await pro.locator('#professional').fill('tp-1');
  await pro.locator('#name').fill('Doctor Test Person');
  await pro.locator('main button[type=submit]').click();
  await pro.waitForURL(`${base}/viewer`);
  await pro.locator('#viewer-professional').waitFor();
  await pro.getByLabel("Citizen's personal identity code").fill(DEMO_HETU);
  await pro.getByRole('button', { name: 'Look up' }).click();
  await pro.getByRole('heading', { name: 'Shared wellbeing data' }).waitFor();
  await pro.getByRole('heading', { name: 'Blood pressure', level: 2 }).waitFor();
  assert.equal(await pro.getByRole('heading', { name: 'Blood glucose' }).count(), 0, 'glucose is not shared');
  assert.ok(await pro.locator('svg.chart').count() >= 1, 'a blood pressure chart');
  assert.ok(!pro.url().includes(DEMO_HETU) && !(await pro.content()).includes(DEMO_HETU));
  await pro.screenshot({ path: join(output, 'viewer.png'), fullPage: true });

  // The citizen withdraws; the viewer's next request is refused.
  await page.getByRole('button', { name: 'Withdraw consent' }).click();
  await page.getByText('Consent withdrawn.').waitFor();
  await page.getByText('You have not consented').waitFor();
  await pro.locator('#viewer-refresh').click();
  await pro.getByRole('heading', { name: 'Access refused' }).waitFor();
  assert.ok((await pro.locator('#viewer-message').textContent()).includes('403'));

  // The citizen's access log names the organisation and the professional.
  await nav('Access log');
  await page.getByText('Demo Health Centre, Doctor Test Person').first().waitFor();
  await page.getByText('viewed blood pressure').first().waitFor();
  await pro.context().close();
});

test('the access log shows who used the data, filtered by application', async () => {
  await nav('Access log');
  const rows = page.locator('main tbody tr');
  await rows.first().waitFor();
  assert.ok(await rows.count() > 3);
  await page.getByRole('cell', { name: 'PHR Demo' }).first().waitFor();
  await checkA11y('access log');
  await page.getByLabel('Application').selectOption({ label: 'PHR Demo' });
  await page.getByRole('button', { name: 'Filter' }).click();
  const filtered = await page.locator('main tbody tr').allTextContents();
  assert.ok(filtered.length > 0 && filtered.every((row) => row.includes('PHR Demo')), filtered.join('|'));
});

test('the citizen downloads all their data', async () => {
  await nav('Download data');
  await checkA11y('export');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /FHIR Bundle/ }).click(),
  ]);
  const file = join(output, 'my-phr-data.json');
  await download.saveAs(file);
  const bundle = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(bundle.resourceType, 'Bundle');
  assert.equal(bundle.type, 'collection');
  assert.equal(bundle.entry[0].resource.resourceType, 'Patient');
  assert.ok(bundle.entry.length > 100);
  const types = new Set(bundle.entry.map((e) => e.resource.resourceType));
  assert.ok(types.has('Observation') && types.has('Consent'), [...types].join(','));
  const ndjson = await page.request.get(`${base}/portal/export/Observation.ndjson`);
  assert.equal(ndjson.status(), 200);
  const lines = (await ndjson.text()).trim().split('\n');
  assert.ok(lines.length > 100 && lines.every((l) => JSON.parse(l).resourceType === 'Observation'));
  assert.ok(!JSON.stringify(bundle).includes(DEMO_HETU));
});

test('the public list shows accepted applications, links from the portal and hides a suspended one', async () => {
  const admin = (...args) => execFileSync(phr, ['app', ...args, '--data', data, '--public-url', base], { encoding: 'utf8' });
  admin('round', 'demo-app', '--content', 'blood-glucose', '--outcome', 'pass');
  admin('accept', 'demo-app', '--content', 'blood-glucose', '--write');
  admin('update', 'demo-app', '--supplier', 'PHR Demo Oy', '--platform', 'web');
  await nav('Applications');
  await page.getByRole('link', { name: 'Accepted applications and the data they process' }).click();
  await page.getByRole('heading', { name: 'Accepted wellbeing applications', level: 1 }).waitFor();
  const card = page.locator('section.card', { has: page.getByRole('heading', { name: 'PHR Demo' }) });
  await card.getByText('Blood glucose').waitFor();
  await card.getByText('PHR Demo Oy').waitFor();
  await checkA11y('public application list');
  await page.getByRole('link', { name: 'Suomeksi' }).click();
  await page.getByRole('heading', { name: 'Hyväksytyt hyvinvointisovellukset', level: 1 }).waitFor();
  await checkA11y('public application list (fi)');
  admin('suspend', 'demo-app');
  await page.reload();
  assert.equal(await card.count(), 0, 'a suspended application is gone at once');
  await checkA11y('public application list without the suspended application');
});
