// Measures how many open console tabs slow another API client down (cpp-httplib
// keep-alive pins a worker per tab). A diagnostic, not part of the suite:
//   node measure_tabs.mjs <endpoint> <pipeline> <tabs>
import { chromium } from 'playwright-core';
const [endpoint, name, tabs] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const pages = [];
for (let i = 0; i < Number(tabs); i++) {
  const ctx = await browser.newContext(); // a context per tab: own connections, like separate browsers
  const p = await ctx.newPage();
  await p.goto(`${endpoint}/console/#/pipelines/${name}`);
  pages.push(p);
}
await new Promise((r) => setTimeout(r, 3000));
const times = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  await fetch(`${endpoint}/`, { method: 'POST', headers: { 'X-Amz-Target': 'CodePipeline_20150709.ListPipelines', 'Content-Type': 'application/x-amz-json-1.1', Connection: 'close' }, body: '{}' });
  times.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 250));
}
times.sort((a, b) => a - b);
console.log(`tabs=${tabs} p50=${times[10].toFixed(1)}ms max=${times[19].toFixed(1)}ms`);
await browser.close();
