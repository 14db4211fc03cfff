// Shared by the console tests: axe-core checks, and (for editing the
// console without rebuilding the binary) serving its files from the source tree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
// axe-core from npm (package-lock.json), injected into the page: no CDN.
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

// Runs axe-core on the page as it is now (WCAG 2.0/2.1 A and AA rules and
// axe's best practices, colour contrast 4.5:1 among them) and fails on any
// serious or critical violation, naming the rule and the elements.
export async function assertAccessible(page, label) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`).slice(0, 5),
    }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.filter((v) => !bad.includes(v));
  if (minor.length) console.log(`axe on ${label}, moderate or minor: ${minor.map((v) => `${v.id} (${v.nodes.length})`).join(', ')}`);
  assert.deepEqual(bad, [], `axe on ${label}: ${JSON.stringify(bad, null, 2)}`);
  return result;
}

// PW_CONSOLE_ASSETS=<dir>: the context gets the console's files from <dir>
// (with the server's CSP) instead of the binary's embedded copy.
export async function serveAssetsFromSource(context) {
  const dir = process.env.PW_CONSOLE_ASSETS;
  if (!dir) return;
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
  await context.route(/\/console\/([^/?#]*)(\?.*)?$/, (route) => {
    const name = new URL(route.request().url()).pathname.replace(/^\/console\/?/, '') || 'index.html';
    let body;
    try { body = readFileSync(path.join(dir, path.basename(name))); } catch { return route.continue(); }
    return route.fulfill({
      status: 200, body,
      headers: {
        'Content-Type': `${types[path.extname(name)] || 'application/octet-stream'}; charset=utf-8`,
        'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
      },
    });
  });
}
