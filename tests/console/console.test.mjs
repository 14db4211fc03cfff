// End-to-end tests of the web console: a real `pipewright serve` (port 0, a
// fresh data directory), Debian's Chromium driven by playwright-core, and the
// AWS user guide's retry story ("Retry a Failed Action"), step by step.
// Screenshots of each step go to $PW_BINARY_DIR/console-screenshots/.
//
// Run: tests/console/run.sh (installs Chromium and the npm package when
// missing), or `node --test tests/console/` after a build.
//
// Synchronisation: never a sleep. The test waits on what the page shows
// (Playwright locators with deadlines) or polls the API with a deadline.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
let laptop; // page at 1280 px
let phone; // page at 390 px
const problems = []; // console errors and page errors, from every page

// ---- server and API ----------------------------------------------------------
function startServer(dataDir, extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(PIPEWRIGHT, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
      // The tests gate actions through files in their /tmp dir, which a sandbox's private /tmp hides.
      '--sandbox', 'none', ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] });
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

async function call(op, body, prefix = 'CodePipeline_20150709.', endpoint = server.endpoint) {
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'X-Amz-Target': prefix + op, 'Content-Type': 'application/x-amz-json-1.1' },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${op}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

async function waitFor(what, probe, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function stageState(pipeline, stage) {
  const st = await call('GetPipelineState', { name: pipeline });
  return st.stageStates.find((s) => s.stageName === stage);
}

async function waitStage(pipeline, stage, status) {
  return waitFor(`${pipeline}/${stage} to be ${status}`, async () => {
    const s = await stageState(pipeline, stage);
    return s.latestExecution && s.latestExecution.status === status ? s : null;
  });
}

// ---- pipeline declarations ------------------------------------------------------
const action = (name, category, provider, extra = {}) => ({
  name, actionTypeId: { category, owner: 'AWS', provider, version: '1' }, runOrder: 1, ...extra,
});
const commands = (name, lines, extra = {}) => action(name, extra.category || 'Build', 'Commands', {
  configuration: { Commands: lines.join('\n') }, inputArtifacts: [{ name: 'SourceOut' }], ...extra,
});
const pipeline = (name, stages) => ({
  name, roleArn: 'arn:aws:iam::123456789012:role/pipewright',
  artifactStore: { type: 'S3', location: 'pipewright-artifacts' },
  stages: stages.map(([n, actions]) => ({ name: n, actions })),
});
const source = () => action('Source', 'Source', 'Directory', {
  configuration: { Path: path.join(tmp, 'src') }, outputArtifacts: [{ name: 'SourceOut' }],
});

// ---- browser --------------------------------------------------------------------
async function newPage(width, height, extra = {}) {
  const context = await browser.newContext({ viewport: { width, height }, ...extra });
  await serveAssetsFromSource(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${width}px console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${width}px page error: ${e.message}`));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const region = (page, name) => page.getByRole('region', { name, exact: true });
const stageBadge = (page, stage) => region(page, stage).locator('.stage-head .badge');

async function openPipeline(page, name) {
  await page.goto(`${server.endpoint}/console/#/`);
  await page.getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'pw-console-'));
  mkdirSync(path.join(tmp, 'src'));
  writeFileSync(path.join(tmp, 'src', 'index.html'), '<h1>hello</h1>\n');
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer(path.join(tmp, 'data'));
  // launch() gives Chromium a fresh, empty --user-data-dir of its own (a
  // temporary directory it deletes on close); it refuses one in `args`.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  laptop = await newPage(1280, 800);
  phone = await newPage(390, 844, { deviceScaleFactor: 2, isMobile: true, hasTouch: true });

  const ready = path.join(tmp, 'ready');
  // The guide's pipeline: Staging fails until the file `ready` exists.
  await call('CreatePipeline', {
    pipeline: pipeline('MyFirstPipeline', [
      ['Source', [source()]],
      ['Staging', [
        commands('Check', ['echo "checking for the release file"', `test -f '${ready}'`], { category: 'Test' }),
        commands('Lint', ['echo "lint: 0 problems"'], { category: 'Test' })]],
      ['Production', [commands('Deploy', ['echo "deploying index.html"'])]],
    ]),
  });
  await call('CreatePipeline', {
    pipeline: pipeline('release-gate', [
      ['Source', [source()]],
      ['Approve', [action('Manager', 'Approval', 'Manual', { configuration: { CustomData: 'Check the staging site before shipping.' } })]],
      ['Deploy', [commands('Ship', ['echo shipped'])]],
    ]),
  });
  await call('CreatePipeline', {
    pipeline: pipeline('reshaped', [
      ['Source', [source()]],
      ['Build', [commands('Compile', ['echo compiling', 'exit 3'])]],
    ]),
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

// On failure, keep what the page and the API showed, beside the screenshots.
function withEvidence(name, body) {
  return async () => {
    try {
      await body();
    } catch (e) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
      await laptop.screenshot({ path: path.join(SHOTS, `FAILED-${slug}.png`), fullPage: true }).catch(() => {});
      const states = {};
      for (const p of (await call('ListPipelines', {})).pipelines) {
        states[p.name] = {
          state: await call('GetPipelineState', { name: p.name }),
          executions: await call('ListPipelineExecutions', { pipelineName: p.name }),
          actions: await call('ListActionExecutions', { pipelineName: p.name }),
        };
      }
      writeFileSync(path.join(SHOTS, `FAILED-${slug}.json`), JSON.stringify(states, null, 2));
      throw e;
    }
  };
}

// ---- tests ------------------------------------------------------------------------
test('GET / redirects to the console, which lists every pipeline', withEvidence('GET / redirects to the console, which lists every pipeline', async () => {
  await waitStage('MyFirstPipeline', 'Staging', 'Failed');
  const res = await fetch(`${server.endpoint}/`, { redirect: 'manual' });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), '/console/');

  await laptop.goto(`${server.endpoint}/`);
  assert.match(laptop.url(), /\/console\/$/);
  const table = laptop.getByRole('table');
  for (const name of ['MyFirstPipeline', 'release-gate', 'reshaped']) {
    await table.getByRole('link', { name, exact: true }).waitFor();
  }
  await table.getByRole('row').filter({ hasText: 'MyFirstPipeline' }).getByText('Failed').waitFor();
  await shot(laptop, '01-pipelines-1280');
  await assertAccessible(laptop, 'the pipeline list');
  await phone.goto(`${server.endpoint}/console/`);
  await phone.getByRole('link', { name: 'MyFirstPipeline', exact: true }).waitFor();
  await shot(phone, '01-pipelines-390');
  await assertAccessible(phone, 'the pipeline list at 390 px');
}));

test('the guide: hover Retry to see the actions, retry, watch the pipeline continue', withEvidence('the guide: hover Retry to see the actions, retry, watch the pipeline continue', async () => {
  // 1-2. Open the console and choose the pipeline.
  await openPipeline(laptop, 'MyFirstPipeline');
  const staging = region(laptop, 'Staging');
  await stageBadge(laptop, 'Staging').filter({ hasText: 'Failed' }).waitFor();
  await staging.getByText('Command 2').waitFor(); // the error message
  await shot(laptop, '02-staging-failed-1280');
  await assertAccessible(laptop, 'the pipeline page with a failed stage');

  // 3. Hover over Retry: it names the actions that would run again.
  const retryFailed = staging.getByRole('button', { name: 'Retry failed actions' });
  assert.equal(await retryFailed.isEnabled(), true);
  await retryFailed.hover();
  const tip = staging.getByRole('tooltip');
  await tip.waitFor({ state: 'visible' });
  assert.deepEqual(await tip.locator('li').allTextContents(), ['Check']);
  await shot(laptop, '03-retry-hover-1280');

  const retryStage = staging.getByRole('button', { name: 'Retry stage' });
  await retryStage.hover();
  const stageTip = staging.locator('[data-mode="ALL_ACTIONS"] [role="tooltip"]');
  await stageTip.waitFor({ state: 'visible' });
  assert.deepEqual(await stageTip.locator('li').allTextContents(), ['Check', 'Lint']);

  // Keyboard users get the same list on focus.
  await laptop.mouse.move(0, 0);
  await retryFailed.focus();
  await staging.locator('[data-mode="FAILED_ACTIONS"] [role="tooltip"]').waitFor({ state: 'visible' });
  const described = await retryFailed.getAttribute('aria-describedby');
  assert.match(await laptop.locator(`#${described}`).innerText(), /Check/);

  // The phone layout of the same stage.
  await openPipeline(phone, 'MyFirstPipeline');
  await stageBadge(phone, 'Staging').filter({ hasText: 'Failed' }).waitFor();
  await shot(phone, '02-staging-failed-390');
  await assertAccessible(phone, 'the pipeline page at 390 px');

  // Fix the cause, then choose Retry.
  writeFileSync(path.join(tmp, 'ready'), 'ok\n');
  await retryFailed.click();
  await stageBadge(laptop, 'Staging').filter({ hasText: 'Succeeded' }).waitFor();
  await stageBadge(laptop, 'Production').filter({ hasText: 'Succeeded' }).waitFor();
  await laptop.getByRole('region', { name: 'Latest execution' }).getByText('Succeeded').waitFor();
  await staging.getByText('1 manual retry').waitFor();
  assert.equal(await staging.getByRole('button', { name: 'Retry failed actions' }).count(), 0);
  await shot(laptop, '04-after-retry-1280');

  // The API agrees: one manual retry, the same execution, now Succeeded.
  const st = await stageState('MyFirstPipeline', 'Staging');
  assert.equal(st.retryStageMetadata.manualStageRetryAttempt, 1);
  const executions = (await call('ListPipelineExecutions', { pipelineName: 'MyFirstPipeline' })).pipelineExecutionSummaries;
  assert.equal(executions.length, 1);
  assert.equal(executions[0].status, 'Succeeded');
}));

test('execution detail shows every attempt, and the log of each', withEvidence('execution detail shows every attempt, and the log of each', async () => {
  const staging = region(laptop, 'Staging');
  await staging.locator('.stage-head .exec a').click();
  const detail = laptop.getByRole('region', { name: 'Staging' });
  const checkRows = detail.getByRole('row').filter({ hasText: 'Check' });
  await checkRows.nth(1).waitFor();
  assert.equal(await checkRows.count(), 2);
  await checkRows.nth(0).getByText('Failed', { exact: true }).waitFor();
  await checkRows.nth(1).getByText('Succeeded', { exact: true }).waitFor();
  assert.match(await checkRows.nth(0).innerText(), /#1/);
  assert.match(await checkRows.nth(1).innerText(), /#2/);
  await shot(laptop, '05-execution-detail-1280');
  await assertAccessible(laptop, 'the execution page');

  await checkRows.nth(0).getByRole('link', { name: /Log/ }).click();
  await laptop.getByText(/Complete · \d+ bytes/).waitFor();
  assert.match(await laptop.locator('pre.log').innerText(), /checking for the release file/);
  await shot(laptop, '06-action-log-1280');
  await assertAccessible(laptop, 'the log page');

  // Numbered lines, and the raw log (text/plain from GET /logs/<id>) to download.
  const download = laptop.getByRole('link', { name: 'Download raw log' });
  const href = await download.getAttribute('href');
  const res = await fetch(`${server.endpoint}${href}`);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const raw = await res.text();
  const [saved] = await Promise.all([laptop.waitForEvent('download'), download.click()]);
  assert.equal(readFileSync(await saved.path(), 'utf8'), raw);
  const lines = laptop.locator('pre.log .line');
  const rawLines = raw.replace(/\n$/, '').split('\n');
  assert.equal(await lines.count(), rawLines.length);
  assert.deepEqual(await lines.evaluateAll((els) => els.map((e) => e.getAttribute('data-n'))),
    rawLines.map((_, i) => String(i + 1)));
  assert.deepEqual(await lines.allInnerTexts(), rawLines);
  // The numbers are drawn by CSS: copying the text leaves them out.
  assert.equal(await lines.first().evaluate((e) => getComputedStyle(e, '::before').userSelect), 'none');

  await laptop.getByRole('link', { name: 'MyFirstPipeline' }).click();
  await laptop.getByRole('link', { name: 'Execution history' }).click();
  await laptop.getByRole('heading', { name: 'Execution history' }).waitFor();
  await laptop.getByRole('table').getByText('Succeeded').waitFor();
  await shot(laptop, '07-history-1280');
  await assertAccessible(laptop, 'the execution history');
}));

test('a running action\'s log is followed live', withEvidence('log-follow', async () => {
  const gate = path.join(tmp, 'gate');
  // Waits for the test's gate file; gives up if the temporary directory goes.
  await call('CreatePipeline', {
    pipeline: pipeline('long-build', [
      ['Source', [source()]],
      ['Build', [commands('Compile', ['echo "step 1: compiling"',
        `while [ ! -e '${gate}' ]; do [ -d '${tmp}' ] || exit 97; sleep 0.1; done`,
        'echo "step 2: linking"'])]],
    ]),
  });
  await openPipeline(laptop, 'long-build');
  const build = region(laptop, 'Build');
  await stageBadge(laptop, 'Build').filter({ hasText: 'In progress' }).waitFor();
  await build.getByRole('link', { name: 'Log of Compile' }).click();
  const log = laptop.locator('pre.log');
  await laptop.getByText('Following the log live…').waitFor();
  await log.getByText('step 1: compiling').waitFor();
  assert.doesNotMatch(await log.innerText(), /step 2/);
  await shot(laptop, '07b-log-following-1280');
  writeFileSync(gate, '');
  await log.getByText('step 2: linking').waitFor();
  await laptop.getByText(/Complete · \d+ bytes/).waitFor();
  await laptop.locator('.page-head .badge').filter({ hasText: 'Succeeded' }).waitFor();
  assert.equal((await log.innerText()).match(/step 1: compiling/g).length, 1);
}));

test('a stage that cannot be retried says why', withEvidence('a stage that cannot be retried says why', async () => {
  await waitStage('reshaped', 'Build', 'Failed');
  // The guide's first case: the pipeline structure changed after the failure.
  const decl = (await call('GetPipeline', { name: 'reshaped' })).pipeline;
  decl.stages[1].actions[0].configuration.Commands = 'echo compiling\necho fixed';
  await call('UpdatePipeline', { pipeline: decl });

  await openPipeline(laptop, 'reshaped');
  const build = region(laptop, 'Build');
  await stageBadge(laptop, 'Build').filter({ hasText: 'Failed' }).waitFor();
  const retry = build.getByRole('button', { name: 'Retry failed actions' });
  await build.getByText(/structure changed/).waitFor();
  assert.equal(await retry.isDisabled(), true);
  assert.equal(await build.getByRole('button', { name: 'Retry stage' }).isDisabled(), true);
  const reason = await laptop.locator(`#${await retry.getAttribute('aria-describedby')}`).innerText();
  assert.match(reason, /Cannot retry: The pipeline structure changed since execution/);
  await shot(laptop, '08-not-retryable-1280');

  // A stage that succeeded offers no retry at all.
  assert.equal(await region(laptop, 'Source').getByRole('button', { name: /Retry/ }).count(), 0);

  await openPipeline(phone, 'reshaped');
  await region(phone, 'Build').getByText(/structure changed/).waitFor();
  await shot(phone, '08-not-retryable-390');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the phone layout scrolls sideways by ${overflow}px`);
}));

test('an approval is reviewed and approved from the page', withEvidence('an approval is reviewed and approved from the page', async () => {
  await waitFor('the approval to open', async () => {
    const s = await stageState('release-gate', 'Approve');
    return s.actionStates[0].latestExecution && s.actionStates[0].latestExecution.token;
  });
  await openPipeline(laptop, 'release-gate');
  await laptop.getByText('Approval needed').waitFor();
  const gate = region(laptop, 'Approve');
  await gate.getByRole('button', { name: 'Review Manager' }).click();
  const dialog = laptop.getByRole('dialog', { name: 'Review: Approve / Manager' });
  await dialog.waitFor();
  await dialog.getByText('Check the staging site before shipping.').waitFor();
  await dialog.getByLabel('Comment').fill('Staging looks right. Ship it.');
  await shot(laptop, '09-approval-dialog-1280');
  await dialog.getByRole('button', { name: 'Approve' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await stageBadge(laptop, 'Approve').filter({ hasText: 'Succeeded' }).waitFor();
  await stageBadge(laptop, 'Deploy').filter({ hasText: 'Succeeded' }).waitFor();
  await gate.getByText('Staging looks right. Ship it.').waitFor();
  await shot(laptop, '10-approved-1280');
  const latest = (await stageState('release-gate', 'Approve')).actionStates[0].latestExecution;
  assert.equal(latest.status, 'Succeeded');
  assert.equal(latest.summary, 'Staging looks right. Ship it.');
}));

test('transitions, release change and stop from the pipeline page', withEvidence('transitions, release change and stop from the pipeline page', async () => {
  await openPipeline(laptop, 'release-gate');
  // Disable the transition into Deploy, with a reason, and enable it again.
  await laptop.getByRole('button', { name: 'Disable transition into Deploy' }).click();
  const dlg = laptop.getByRole('dialog', { name: 'Disable transition into Deploy' });
  await dlg.getByLabel('Reason').fill('Release freeze');
  await dlg.getByRole('button', { name: 'Disable' }).click();
  await laptop.getByText('Reason: Release freeze').waitFor();
  const t = (await stageState('release-gate', 'Deploy')).inboundTransitionState;
  assert.equal(t.enabled, false);
  assert.equal(t.disabledReason, 'Release freeze');
  await shot(laptop, '11-transition-disabled-1280');
  await laptop.getByRole('button', { name: 'Enable transition into Deploy' }).click();
  await laptop.getByRole('button', { name: 'Disable transition into Deploy' }).waitFor();

  // Release change starts an execution; it waits for approval; stop it, abandoning.
  await laptop.getByRole('button', { name: 'Release change' }).click();
  await laptop.getByText('Approval needed').waitFor();
  await laptop.getByRole('button', { name: 'Stop execution' }).click();
  const stop = laptop.getByRole('dialog', { name: 'Stop execution' });
  await stop.getByLabel(/Stop and abandon/).check();
  await stop.getByLabel('Reason (optional)').fill('wrong build');
  await stop.getByRole('button', { name: 'Stop', exact: true }).click();
  await laptop.getByRole('region', { name: 'Latest execution' }).getByText('Stopped').waitFor();
  const executions = (await call('ListPipelineExecutions', { pipelineName: 'release-gate' })).pipelineExecutionSummaries;
  assert.equal(executions[0].status, 'Stopped');
  assert.equal(executions.length, 2);
  await shot(laptop, '12-stopped-1280');
}));

test('actions that did not run stay neutral, and a log\'s ANSI colours are rendered', withEvidence('neutral-and-ansi', async () => {
  await call('CreatePipeline', {
    pipeline: pipeline('neutral', [
      ['Source', [source()]],
      ['Build', [commands('Compile', ['printf "\\033[1;31mred error\\033[0m and plain\\n"', 'exit 2']),
        commands('Package', ['echo never'], { runOrder: 2 })]],
    ]),
  });
  await waitStage('neutral', 'Build', 'Failed');
  await openPipeline(laptop, 'neutral');
  const build = region(laptop, 'Build');
  await stageBadge(laptop, 'Build').filter({ hasText: 'Failed' }).waitFor();
  const pkg = build.locator('li.action').filter({ hasText: 'Package' });
  await pkg.getByText("Didn't run").waitFor();
  assert.match(await pkg.getAttribute('class'), /\bs-none\b/);
  const dot = async (li) => li.locator('.dot').evaluate((el) => getComputedStyle(el).backgroundColor);
  const compile = build.locator('li.action').filter({ hasText: 'Compile' });
  assert.notEqual(await dot(pkg), await dot(compile), 'Package must not take the failed stage\'s red');
  assert.equal(await dot(pkg), 'rgb(154, 161, 172)');
  await shot(laptop, '13-not-run-neutral-1280');

  await build.getByRole('link', { name: 'Log of Compile' }).click();
  await laptop.getByText(/Complete · \d+ bytes/).waitFor();
  const red = laptop.locator('pre.log span.ansi-fg-1.ansi-bold');
  assert.equal(await red.innerText(), 'red error');
  const text = await laptop.locator('pre.log').innerText();
  assert.match(text, /red error and plain/);
  assert.doesNotMatch(text, /\[1;31m|\[0m|\u001b/);
}));

test('an approval that waits says so in words', withEvidence('waiting-for-approval', async () => {
  await call('CreatePipeline', {
    pipeline: pipeline('waits', [
      ['Source', [source()]],
      ['Approve', [action('Lead', 'Approval', 'Manual')]],
    ]),
  });
  await waitStage('waits', 'Approve', 'InProgress');
  await openPipeline(laptop, 'waits');
  await stageBadge(laptop, 'Approve').filter({ hasText: 'Waiting for approval' }).waitFor();
  await region(laptop, 'Approve').locator('li.action .st').filter({ hasText: 'Waiting for approval' }).waitFor();
}));

// ---- issue 16: retry plan, retry outcome, focus, parallel actions, execution page ----------
const plan = (dialog, title) => dialog.getByRole('region', { name: title }).locator('li').allTextContents();
const activeFocusKey = (page) => page.evaluate(() => document.activeElement && document.activeElement.getAttribute('data-focus'));
// What has the focus, for a failure message: its data-focus, else its tag and text.
const focusReport = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return el ? el.getAttribute('data-focus') || `<${el.tagName.toLowerCase()}> ${(el.textContent || '').slice(0, 60)}` : 'nothing';
});

// Records every focus change from now on (what gained or lost it, whether it was
// still in the page, ms since the start), for a failure message: focusTrace.
const traceFocus = (page) => page.evaluate(() => {
  const t0 = performance.now();
  const say = (el) => (!el || el === document.body ? 'body' : el.getAttribute && el.getAttribute('data-focus')) ||
    `<${el.tagName.toLowerCase()}> ${(el.textContent || '').slice(0, 30)}`;
  window.__focusLog = [];
  for (const type of ['focusin', 'focusout']) {
    document.addEventListener(type, (ev) => window.__focusLog.push(
      `${Math.round(performance.now() - t0)}ms ${type} ${say(ev.target)}${ev.target.isConnected ? '' : ' (detached)'}`), true);
  }
  document.getElementById('dialog').addEventListener('close', () =>
    window.__focusLog.push(`${Math.round(performance.now() - t0)}ms dialog closed; focus on ${say(document.activeElement)}`));
});
const focusTrace = (page) => page.evaluate(() => (window.__focusLog || []).join('\n'));

test('touch: Retry shows the plan first; Cancel does not retry, Confirm does', withEvidence('touch-retry', async () => {
  const gate = path.join(tmp, 'touch-ready');
  await call('CreatePipeline', {
    pipeline: pipeline('touchy', [
      ['Source', [source()]],
      ['Build', [commands('Flaky', [`test -f '${gate}'`]), commands('Steady', ['echo steady']),
        commands('Package', ['echo packaged'], { runOrder: 2 })]],
    ]),
  });
  await waitStage('touchy', 'Build', 'Failed');
  await openPipeline(phone, 'touchy');
  const build = region(phone, 'Build');
  await stageBadge(phone, 'Build').filter({ hasText: 'Failed' }).waitFor();
  const retry = build.getByRole('button', { name: 'Retry failed actions' });
  await retry.tap();
  const dialog = phone.getByRole('dialog', { name: 'Retry failed actions in Build?' });
  await dialog.waitFor();
  assert.deepEqual(await plan(dialog, 'Runs again'), ['Flaky']);
  assert.deepEqual(await plan(dialog, 'Then runs, as the stage continues'), ['Package']);
  assert.deepEqual(await plan(dialog, 'Kept (not run again)'), ['Steady']);
  await shot(phone, '15-touch-retry-plan-390');
  await assertAccessible(phone, 'the retry plan confirmation');

  await dialog.getByRole('button', { name: 'Cancel' }).tap();
  await dialog.waitFor({ state: 'hidden' });
  await waitFor('focus back on Retry', async () => (await activeFocusKey(phone)) === 'retry|Build|FAILED_ACTIONS');
  let st = await stageState('touchy', 'Build');
  assert.equal(st.latestExecution.status, 'Failed');
  assert.equal(st.retryStageMetadata, undefined, 'Cancel must not retry');

  writeFileSync(gate, '');
  await retry.tap();
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Confirm' }).tap();
  await dialog.waitFor({ state: 'hidden' });
  await stageBadge(phone, 'Build').filter({ hasText: 'Succeeded' }).waitFor();
  await phone.locator('.toast').filter({ hasText: 'The retry of Build succeeded.' }).waitFor();
  st = await stageState('touchy', 'Build');
  assert.equal(st.retryStageMetadata.manualStageRetryAttempt, 1);
  // The Retry buttons are gone; their outcome line holds the focus.
  await waitFor('focus on the outcome', async () => (await activeFocusKey(phone)) === 'outcome|Build');
}));

test('parallel actions sit side by side at 1280 px (stacked at 390), each with its duration', withEvidence('parallel', async () => {
  await openPipeline(laptop, 'touchy');
  const build = region(laptop, 'Build');
  await stageBadge(laptop, 'Build').filter({ hasText: 'Succeeded' }).waitFor();
  await build.getByText('Step 1 · 2 actions in parallel').waitFor();
  const box = async (page, name) => region(page, 'Build').locator('li.action').filter({ hasText: name }).boundingBox();
  for (const name of ['Flaky', 'Steady', 'Package']) {
    const d = build.locator('li.action').filter({ hasText: name }).locator('.duration');
    await d.waitFor();
    assert.match(await d.innerText(), /^took \d+ s$/);
  }
  const [flaky, steady, pkg] = [await box(laptop, 'Flaky'), await box(laptop, 'Steady'), await box(laptop, 'Package')];
  assert.ok(Math.abs(flaky.y - steady.y) < 2 && steady.x > flaky.x + flaky.width - 2, `side by side: ${JSON.stringify([flaky, steady])}`);
  assert.ok(pkg.y >= flaky.y + flaky.height - 1, 'the next step comes below');
  await shot(laptop, '16-parallel-1280');
  await openPipeline(phone, 'touchy');
  await region(phone, 'Build').getByText('Step 1 · 2 actions in parallel').waitFor();
  const [f2, s2] = [await box(phone, 'Flaky'), await box(phone, 'Steady')];
  assert.ok(s2.y >= f2.y + f2.height - 1, `stacked at 390 px: ${JSON.stringify([f2, s2])}`);
}));

test('a retry that fails again says so, with the failing action and its log; focus stays on Retry', withEvidence('fails-again', async () => {
  await call('CreatePipeline', {
    pipeline: pipeline('again', [
      ['Source', [source()]],
      ['Build', [commands('Always', ['echo "still broken"', 'exit 4'])]],
    ]),
  });
  await waitStage('again', 'Build', 'Failed');
  await openPipeline(laptop, 'again');
  const build = region(laptop, 'Build');
  await stageBadge(laptop, 'Build').filter({ hasText: 'Failed' }).waitFor();
  const retry = build.getByRole('button', { name: 'Retry failed actions' });
  // With a mouse (the tooltip shows the plan), Retry failed actions runs at once.
  await retry.click();
  const failedAgain = laptop.locator('.toast.error').filter({ hasText: 'The retried action in Build failed again: Always.' });
  await failedAgain.waitFor();
  assert.equal(await laptop.locator('.toast').filter({ hasText: /Retrying|succeeded/ }).count(), 0, 'no stale toast');
  await build.locator('.retry-outcome').filter({ hasText: 'failed again' }).waitFor();
  await build.getByRole('button', { name: 'Retry failed actions' }).and(laptop.locator(':enabled')).waitFor();
  assert.equal(await activeFocusKey(laptop), 'retry|Build|FAILED_ACTIONS');
  await shot(laptop, '17-failed-again-1280');

  // Retry stage always asks first, by keyboard too: Enter, Tab to Confirm, Enter.
  await build.getByRole('button', { name: 'Retry stage' }).focus();
  await laptop.keyboard.press('Enter');
  const dialog = laptop.getByRole('dialog', { name: 'Retry stage Build?' });
  await dialog.waitFor();
  assert.deepEqual(await plan(dialog, 'Runs again'), ['Always']);
  assert.match(await dialog.getByRole('region', { name: 'Kept (not run again)' }).innerText(), /Nothing/);
  await laptop.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  await waitFor('focus back on Retry stage', async () => (await activeFocusKey(laptop)) === 'retry|Build|ALL_ACTIONS');
  assert.equal((await stageState('again', 'Build')).retryStageMetadata.manualStageRetryAttempt, 1);
  await traceFocus(laptop);
  await laptop.keyboard.press('Enter');
  await dialog.waitFor();
  // A close event still queued from an earlier dialog, arriving while this
  // one is open (seen under load): the focus still comes back after Confirm.
  await laptop.evaluate(() => document.getElementById('dialog').dispatchEvent(new Event('close')));
  await dialog.getByRole('button', { name: 'Confirm' }).focus();
  await laptop.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  await waitFor('the second retry', async () => (await stageState('again', 'Build')).retryStageMetadata.manualStageRetryAttempt === 2);
  await waitFor('its outcome', async () => /failed again/.test(await build.locator('.retry-outcome').innerText().catch(() => '')) &&
    (await build.getByRole('button', { name: 'Retry stage' }).isEnabled()));
  assert.equal(await activeFocusKey(laptop), 'retry|Build|ALL_ACTIONS',
    `focus is on ${await focusReport(laptop)}; focus changes since the second Enter:\n${await focusTrace(laptop)}`);

  // The toast's link opens the log of the attempt that failed again.
  await laptop.locator('.toast.error').last().getByRole('link', { name: 'Log of Always' }).click();
  await laptop.getByText(/Complete · \d+ bytes/).waitFor();
  assert.match(await laptop.locator('pre.log').innerText(), /still broken/);
  const runs = (await call('ListActionExecutions', { pipelineName: 'again' })).actionExecutionDetails
    .filter((r) => r.actionName === 'Always').sort((a, b) => b.startTime - a.startTime);
  assert.equal(runs.length, 3);
  assert.match(laptop.url(), new RegExp(`/logs/${runs[0].actionExecutionId}$`));
}));

test('a Retry button rebuilt disabled for a moment hands the focus to the outcome line and takes it back when enabled', withEvidence('refocus', async () => {
  await call('CreatePipeline', {
    pipeline: pipeline('refocus', [
      ['Source', [source()]],
      ['Build', [commands('Broken', ['exit 3'])]],
    ]),
  });
  await waitStage('refocus', 'Build', 'Failed');
  await openPipeline(laptop, 'refocus');
  const build = region(laptop, 'Build');
  const retry = build.getByRole('button', { name: 'Retry failed actions' });
  await retry.and(laptop.locator(':enabled')).waitFor();
  // The retry fails again, and its plan is unavailable for a moment (as when
  // the server refuses a request): the buttons come back disabled.
  let refused = 0;
  const known = problems.length;
  await laptop.route('**/', async (route) => {
    if ((route.request().headers()['x-amz-target'] || '').endsWith('.GetStageRetryPlan')) {
      refused += 1;
      await route.fulfill({ status: 400, contentType: 'application/x-amz-json-1.1', body: JSON.stringify({ __type: 'ValidationException', message: 'not now' }) });
    } else {
      await route.continue();
    }
  });
  try {
    await retry.click();
    await build.getByText(/The retry plan is unavailable: not now/).first().waitFor();
    assert.ok(refused > 0);
    assert.equal(await retry.isDisabled(), true);
    await build.locator('.retry-outcome').filter({ hasText: 'failed again' }).waitFor();
    await waitFor('the outcome line holds the focus meanwhile', async () => (await activeFocusKey(laptop)) === 'outcome|Build');
  } finally {
    await laptop.unroute('**/');
    // Chromium logs each refused request; those are this test's own doing.
    for (let i = problems.length - 1; i >= known; i -= 1) {
      if (/status of 400 \(Bad Request\)/.test(problems[i])) problems.splice(i, 1);
    }
  }
  // The next change asks for the plan again: Retry is usable and has the focus again.
  await call('DisableStageTransition', { pipelineName: 'refocus', stageName: 'Build', transitionType: 'Inbound', reason: 'a change the page sees' });
  await retry.and(laptop.locator(':enabled')).waitFor();
  await waitFor('focus back on Retry', async () => (await activeFocusKey(laptop)) === 'retry|Build|FAILED_ACTIONS');
  // Once the user has moved on, a later re-render leaves their focus alone.
  await laptop.getByRole('link', { name: 'Execution history' }).focus();
  await call('EnableStageTransition', { pipelineName: 'refocus', stageName: 'Build', transitionType: 'Inbound' });
  await waitFor('the transition enabled on the page', async () => (await laptop.getByText('a change the page sees').count()) === 0);
  assert.equal(await focusReport(laptop), '<a> Execution history');
}));

test('the execution page: stage statuses, timeline, variables, and Retry with its plan', withEvidence('execution-page', async () => {
  const decl = pipeline('varied', [
    ['Source', [source()]],
    ['Build', [commands('Compile', ['export VERSION=1.2.3'], { namespace: 'BuildVars', outputVariables: ['VERSION'] })]],
    ['Deploy', [commands('Ship', ['echo "deploying #{BuildVars.VERSION} to #{variables.target}"', 'exit 5'])]],
  ]);
  decl.pipelineType = 'V2';
  decl.variables = [{ name: 'target', defaultValue: 'staging' }];
  await call('CreatePipeline', { pipeline: decl });
  const st = await waitStage('varied', 'Deploy', 'Failed');
  const id = st.latestExecution.pipelineExecutionId;
  await laptop.goto(`${server.endpoint}/console/#/pipelines/varied/executions/${id}`);
  for (const [stage, status] of [['Source', 'Succeeded'], ['Build', 'Succeeded'], ['Deploy', 'Failed']]) {
    await region(laptop, stage).locator('.panel-head .badge').filter({ hasText: status }).waitFor();
  }
  const timeline = region(laptop, 'Timeline');
  await timeline.locator('li').nth(5).waitFor();
  assert.deepEqual(await timeline.locator('.tl-label').evaluateAll((els) => els.map((e) => e.firstChild.textContent)),
    ['Source', 'Source #1', 'Build', 'Compile #1', 'Deploy', 'Ship #1']);
  assert.match(await timeline.locator('li').nth(5).innerText(), /\d{1,2}:\d\d:\d\d.* – .*\d{1,2}:\d\d:\d\d.* · \d+ s/);
  const vars = region(laptop, 'Variables');
  const row = async (name) => vars.getByRole('row').filter({ hasText: name }).innerText();
  assert.match(await row('variables.target'), /staging/);
  assert.match(await row('BuildVars.VERSION'), /1\.2\.3/);
  assert.match(await row('Commands (resolved)'), /deploying 1\.2\.3 to staging/);
  // Columns line up from one stage's table to the next.
  const lefts = await laptop.locator('table.attempts thead th:nth-child(4)').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
  assert.equal(new Set(lefts).size, 1, `Started columns at ${lefts}`);
  await shot(laptop, '18-execution-page-1280');
  await assertAccessible(laptop, 'the execution page with timeline and variables');
  await phone.goto(`${server.endpoint}/console/#/pipelines/varied/executions/${id}`);
  await region(phone, 'Variables').getByText('BuildVars.VERSION').waitFor();
  await shot(phone, '18-execution-page-390');
  await assertAccessible(phone, 'the execution page at 390 px');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the execution page scrolls sideways by ${overflow}px at 390 px`);

  const deploy = region(laptop, 'Deploy');
  await deploy.getByRole('button', { name: 'Retry stage' }).click();
  const dialog = laptop.getByRole('dialog', { name: 'Retry stage Deploy?' });
  await dialog.waitFor();
  assert.deepEqual(await plan(dialog, 'Runs again'), ['Ship']);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await deploy.getByRole('row').filter({ hasText: '#2' }).getByText('Failed', { exact: true }).waitFor();
  await laptop.locator('.toast.error').filter({ hasText: 'The retried action in Deploy failed again: Ship.' }).waitFor();
  assert.equal(await timeline.locator('.tl-label').filter({ hasText: 'Ship #2' }).count(), 1);
}));

test('execution history pages back with nextToken', withEvidence('history-paging', async () => {
  await call('CreatePipeline', { pipeline: pipeline('busy', [['Source', [source()]], ['Build', [commands('B', ['true'])]]]) });
  for (let i = 0; i < 52; i++) await call('StartPipelineExecution', { name: 'busy' });
  await laptop.goto(`${server.endpoint}/console/#/pipelines/busy/executions`);
  await laptop.getByText('50 executions shown').waitFor();
  assert.equal(await laptop.getByRole('table').locator('tbody tr').count(), 50);
  await laptop.getByRole('button', { name: 'Show older executions' }).click();
  await laptop.getByText('53 executions shown').waitFor();
  assert.equal(await laptop.getByRole('button', { name: 'Show older executions' }).count(), 0);
  const ids = await laptop.getByRole('table').locator('tbody tr td:first-child a').evaluateAll((els) => els.map((e) => e.getAttribute('title')));
  assert.equal(new Set(ids).size, 53);
}));

test('the list page: 200 pipelines, one request per refresh, search, filter, sort and pages', withEvidence('list-200', async () => {
  const many = await startServer(path.join(tmp, 'data-many'), ['--no-start-on-create']);
  try {
    for (let i = 0; i < 200; i++) {
      const name = `pipe-${String(i).padStart(4, '0')}`;
      await call('CreatePipeline', { pipeline: pipeline(name, [['Source', [source()]], ['Build', [commands('B', ['true'])]]]) },
        undefined, many.endpoint);
    }
    await call('StartPipelineExecution', { name: 'pipe-0007' }, undefined, many.endpoint);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await serveAssetsFromSource(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    const posts = [];
    page.on('request', (r) => { if (r.method() === 'POST') posts.push([Date.now(), r.headers()['x-amz-target']]); });
    await page.goto(`${many.endpoint}/console/#/`);
    await page.getByText('1–25 of 200').waitFor();
    // Idle: count the API requests of one tab over 12 s (before: 1 + 200 every 5 s).
    const start = Date.now();
    await page.waitForTimeout(12000); // measuring a rate over a window, not synchronising
    const inWindow = posts.filter(([t]) => t >= start);
    console.log(`idle list tab, 200 pipelines: ${inWindow.length} requests in 12 s (${inWindow.map((p) => p[1]).join(', ')})`);
    assert.ok(inWindow.length <= 4, `${inWindow.length} requests in 12 s`);
    assert.ok(inWindow.every(([, t]) => t === 'Pipewright_20261125.ListPipelineSummaries'));

    const rows = page.getByRole('table').locator('tbody tr');
    assert.equal(await rows.count(), 25);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('26–50 of 200').waitFor();
    await page.getByRole('table').getByRole('link', { name: 'pipe-0025', exact: true }).waitFor();
    await page.getByLabel('Search pipelines by name').fill('pipe-0042');
    await page.getByText('1–1 of 1').waitFor();
    await page.getByRole('table').getByRole('link', { name: 'pipe-0042', exact: true }).waitFor();
    await page.getByLabel('Search pipelines by name').fill('');
    await page.getByLabel('Status').selectOption('none');
    await page.getByText('1–25 of 199').waitFor();
    await page.getByLabel('Status').selectOption('all');
    await page.getByLabel('Sort by').selectOption('recent');
    await waitFor('pipe-0007 first', async () => (await rows.first().innerText()).includes('pipe-0007'));
    await shot(page, '14-list-200-1280');
    await context.close();
  } finally {
    many.proc.kill('SIGTERM');
    await new Promise((r) => { many.proc.once('exit', r); setTimeout(r, 5000); });
  }
}));

test('no console errors or page errors on any page', () => {
  assert.deepEqual(problems, []);
});
