// Console sign-in and sign-out in Debian's Chromium, against a real
// `pipewright serve --auth-keys-file` (port 0, a fresh data directory).
// Screenshots go to $PW_BINARY_DIR/console-screenshots/auth-*.png.
//
// Synchronisation: never a sleep; Playwright locators wait with deadlines.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { assertAccessible, serveAssetsFromSource } from './support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD = process.env.PW_BINARY_DIR || path.join(ROOT, 'build');
const PIPEWRIGHT = path.join(BUILD, 'pipewright');
const SHOTS = path.join(BUILD, 'console-screenshots');
const CHROMIUM = process.env.PW_CHROMIUM || '/usr/bin/chromium';
const WAIT = 30000;

let server; // { proc, endpoint }
let tmp;
let browser;
const problems = [];

function startServer(dataDir, keysFile) {
  return new Promise((resolve, reject) => {
    const proc = spawn(PIPEWRIGHT, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
      '--auth-keys-file', keysFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}${err}`)), 15000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, endpoint: m[1] });
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await serveAssetsFromSource(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  // A refused sign-in or API call logs a failed resource load: expected here.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return page;
}

const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `auth-${name}.png`), fullPage: true });

async function signIn(page, akid, secret) {
  await page.getByLabel('Access key ID').fill(akid);
  await page.getByLabel('Secret access key').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'pw-console-auth-'));
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(path.join(tmp, 'ro.json'), JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['codepipeline:Get*', 'codepipeline:List*'], Resource: '*' }],
  }));
  writeFileSync(path.join(tmp, 'keys'), 'ADMIN:admin-secret-1\nREADER:reader-secret-1:ro.json\n');
  server = await startServer(path.join(tmp, 'data'), path.join(tmp, 'keys'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    server.proc.kill('SIGTERM');
    await new Promise((r) => { server.proc.once('exit', r); setTimeout(r, 5000); });
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the console asks for a key, refuses a wrong one, signs in and out', async () => {
  const page = await newPage();
  await page.goto(`${server.endpoint}/console/#/`);
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  assert.equal(await page.locator('#user').isVisible(), false);
  await shot(page, 'form');
  await assertAccessible(page, 'the sign-in form');

  await signIn(page, 'ADMIN', 'not-the-secret');
  await page.getByRole('alert').filter({ hasText: 'wrong' }).waitFor();
  assert.equal(await page.getByRole('heading', { level: 1, name: 'Sign in' }).isVisible(), true);
  await assertAccessible(page, 'the sign-in form with its error');

  await signIn(page, 'ADMIN', 'admin-secret-1');
  await page.getByRole('heading', { level: 1, name: 'Pipelines' }).waitFor();
  await page.getByText('Signed in as ADMIN').waitFor();
  await assertAccessible(page, 'the pipeline list, signed in');
  const cookies = await page.context().cookies();
  const cookie = cookies.find((c) => c.name === 'pw_session');
  assert.ok(cookie, 'session cookie set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  // The secret is not kept in the page, and the cookie is not readable by scripts.
  assert.equal(await page.evaluate(() => document.cookie.includes('pw_session')), false);
  await shot(page, 'signed-in');

  // A reload keeps the session (the server hands the CSRF token back).
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Pipelines' }).waitFor();
  await page.getByText('Signed in as ADMIN').waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  await page.getByText('You have signed out.').waitFor();
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  await shot(page, 'signed-out');
  await page.context().close();
});

test('a session that ends while the page is open returns to the sign-in form', async () => {
  const page = await newPage();
  await page.goto(`${server.endpoint}/console/#/`);
  await signIn(page, 'READER', 'reader-secret-1');
  await page.getByRole('heading', { level: 1, name: 'Pipelines' }).waitFor();
  // The server forgets the session (as after expiry or a restart): drop the cookie.
  await page.context().clearCookies();
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  await page.getByText('Your session has ended').waitFor();
  await page.context().close();
});

test('no page errors', () => {
  assert.deepEqual(problems, []);
});
