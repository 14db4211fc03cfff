// Measures what open console tabs cost: each tab's API requests per minute,
// and how much they slow another API client down (cpp-httplib keep-alive
// pins a worker per tab). A diagnostic, not part of the suite:
//   node measure_tabs.mjs <endpoint> <pipeline | -> <tabs> [seconds]
// "-" opens the pipeline list (#/) instead of one pipeline's page.
import { chromium } from 'playwright-core';
const [endpoint, name, tabs, seconds = '20'] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const pages = [];
let requests = 0;
for (let i = 0; i < Number(tabs); i++) {
  const ctx = await browser.newContext(); // a context per tab: own connections, like separate browsers
  const p = await ctx.newPage();
  p.on('request', (r) => { if (r.method() === 'POST') requests += 1; });
  await p.goto(name === '-' ? `${endpoint}/console/#/` : `${endpoint}/console/#/pipelines/${name}`);
  pages.push(p);
}
await new Promise((r) => setTimeout(r, 3000)); // past the first load
requests = 0;
const start = performance.now();
const times = [];
while (performance.now() - start < Number(seconds) * 1000) {
  const t = performance.now();
  await fetch(`${endpoint}/`, { method: 'POST', headers: { 'X-Amz-Target': 'CodePipeline_20150709.ListPipelines', 'Content-Type': 'application/x-amz-json-1.1', Connection: 'close' }, body: '{}' });
  times.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 250));
}
const minutes = (performance.now() - start) / 60000;
times.sort((a, b) => a - b);
const q = (f) => times[Math.min(times.length - 1, Math.floor(f * times.length))].toFixed(1);
console.log(`tabs=${tabs} page=${name === '-' ? 'list' : name} requests/min/tab=${Number(tabs) ? (requests / minutes / Number(tabs)).toFixed(1) : '-'} other client: p50=${q(0.5)}ms max=${q(1)}ms`);
await browser.close();
