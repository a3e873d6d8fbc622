// Page weight and time to an interactive console, in Chromium from a cold
// cache. Run by bench/page.py, which starts the server and passes
// BENCH_BASE, BENCH_USER and BENCH_PASSWORD. Prints figures; asserts nothing.
import { chromium } from '@playwright/test';

const base = process.env.BENCH_BASE;
const runs = Number(process.env.BENCH_RUNS ?? '3');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// Signed in once (sign-ins are rate limited); each context gets the session
// cookie and nothing else, so its cache is cold.
let session;
async function signedInContext() {
  if (!session) {
    const context = await browser.newContext();
    const res = await context.request.post(`${base}/api/auth/login`, {
      data: { username: process.env.BENCH_USER, password: process.env.BENCH_PASSWORD },
    });
    if (!res.ok()) throw new Error(`sign-in: ${res.status()}`);
    session = await context.storageState();
    await context.close();
  }
  return browser.newContext({ storageState: session });
}

// What the console's page loads, by encoding.
const context = await signedInContext();
const html = await (await context.request.get(`${base}/`)).text();
const urls = [...html.matchAll(/href="(\/pkg\/[^"]+)"/g)].map((m) => m[1]);
const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
const totals = { identity: 0, gzip: 0, br: 0 };
console.log('| file | raw | gzip | brotli |');
console.log('|---|---|---|---|');
for (const url of urls) {
  const sizes = {};
  for (const encoding of ['identity', 'gzip', 'br']) {
    // Sent as stored (compressed): count the bytes on the wire.
    const res = await fetch(`${base}${url}`, { headers: { 'accept-encoding': encoding } });
    const body = new Uint8Array(await res.arrayBuffer());
    // Node's fetch decodes; the wire size is the Content-Length the server sent.
    sizes[encoding] = Number(res.headers.get('content-length') ?? body.length);
    totals[encoding] += sizes[encoding];
  }
  console.log(`| ${url.replace(/[0-9a-f]{12}/, '<version>')} | ${kb(sizes.identity)} | ${kb(sizes.gzip)} | ${kb(sizes.br)} |`);
}
console.log(`| all | ${kb(totals.identity)} | ${kb(totals.gzip)} | ${kb(totals.br)} |`);
await context.close();

// Cold cache: a new context each run, navigation start to hydrated.
const times = [];
for (let i = 0; i < runs; i++) {
  const ctx = await signedInContext();
  const page = await ctx.newPage();
  const transferred = [];
  page.on('requestfinished', async (req) => {
    const sizes = await req.sizes().catch(() => null);
    if (sizes) transferred.push(sizes.responseBodySize + sizes.responseHeadersSize);
  });
  const start = Date.now();
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  const elapsed = (Date.now() - start) / 1000;
  const nav = await page.evaluate(() => {
    const [n] = performance.getEntriesByType('navigation');
    return { html: n.responseEnd / 1000 };
  });
  times.push(elapsed);
  console.log(`run ${i + 1}: hydrated console in ${elapsed.toFixed(2)} s (page HTML at ${nav.html.toFixed(2)} s), ` +
    `${kb(transferred.reduce((a, b) => a + b, 0))} transferred`);
  await ctx.close();
}
times.sort((a, b) => a - b);
console.log(`median time to a hydrated console from a cold cache: ${times[Math.floor(times.length / 2)].toFixed(2)} s (target <= 1 s)`);
await browser.close();
