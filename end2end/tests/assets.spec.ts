import { expect, hydrated, test } from './helpers';

// The console's bundle (script, wasm, style) is named under its version, so
// browsers keep it for good, and is sent as compressed at build time in the
// best encoding the browser accepts.

async function bundleUrls(request: import('@playwright/test').APIRequestContext) {
  const html = await (await request.get('/login')).text();
  const script = html.match(/<link rel="modulepreload" href="(\/pkg\/[0-9a-f]{12}\/lms-admin\.js)"/)?.[1];
  const wasm = html.match(/<link rel="preload" href="(\/pkg\/[0-9a-f]{12}\/lms-admin\.wasm)"/)?.[1];
  const style = html.match(/<link rel="stylesheet" id="leptos" href="(\/pkg\/[0-9a-f]{12}\/lms-admin\.css)"/)?.[1];
  expect(script, 'the page names the script under a version').toBeTruthy();
  expect(wasm, 'and the wasm').toBeTruthy();
  expect(style, 'and the style').toBeTruthy();
  const version = (u: string) => u.split('/')[2];
  expect(new Set([script!, wasm!, style!].map(version)).size, 'one version for the bundle').toBe(1);
  return { script: script!, wasm: wasm!, style: style! };
}

test('the bundle is versioned, kept for good, and sent in the encoding asked for', async ({ request }) => {
  const urls = await bundleUrls(request);
  for (const url of [urls.script, urls.wasm, urls.style]) {
    const plain = await request.get(url, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.status()).toBe(200);
    expect(plain.headers()['content-encoding']).toBeUndefined();
    expect(plain.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
    const body = await plain.body();
    for (const encoding of ['br', 'gzip']) {
      const res = await request.get(url, { headers: { 'accept-encoding': encoding } });
      expect(res.status()).toBe(200);
      expect(res.headers()['content-encoding'], `${url} as ${encoding}`).toBe(encoding);
      expect(res.headers()['vary']).toContain('accept-encoding');
      // Decoded by the client: the same bytes as sent plain.
      expect(Buffer.compare(await res.body(), body), `${url} decodes to the file`).toBe(0);
    }
    // Brotli is preferred when both are accepted.
    const both = await request.get(url, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(both.headers()['content-encoding']).toBe('br');
    // Refused with q=0, it is not sent.
    const refused = await request.get(url, { headers: { 'accept-encoding': 'br;q=0, gzip' } });
    expect(refused.headers()['content-encoding']).toBe('gzip');
  }
  // Another version is not this bundle.
  const stale = await request.get(urls.script.replace(/\/pkg\/[0-9a-f]{12}\//, '/pkg/000000000000/'));
  expect(stale.status()).toBe(404);
});

test('unversioned files are revalidated, and unchanged ones answer 304', async ({ request }) => {
  const first = await request.get('/favicon.ico');
  expect(first.status()).toBe(200);
  expect(first.headers()['cache-control']).toBe('no-cache');
  const etag = first.headers()['etag'];
  expect(etag).toMatch(/^W\/"[0-9a-f]{16}"$/);
  const again = await request.get('/favicon.ico', { headers: { 'if-none-match': etag } });
  expect(again.status()).toBe(304);
});

test('a cold browser fetches the bundle once and a new visit takes it from its cache', async ({ page }) => {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const fromNetwork = new Set<string>();
  const cached = new Set<string>();
  cdp.on('Network.requestServedFromCache', (e) => cached.add(e.requestId));
  cdp.on('Network.responseReceived', (e) => {
    const url = new URL(e.response.url);
    if (!url.pathname.startsWith('/pkg/')) return;
    if (e.response.fromDiskCache || e.response.fromMemoryCache || cached.has(e.requestId)) return;
    fromNetwork.add(url.pathname);
  });
  await page.goto('/login');
  await hydrated(page);
  expect([...fromNetwork].sort().map((p) => p.replace(/[0-9a-f]{12}/, 'V')), 'a cold cache fetches the bundle').toEqual([
    '/pkg/V/lms-admin.css',
    '/pkg/V/lms-admin.js',
    '/pkg/V/lms-admin.wasm',
  ]);
  fromNetwork.clear();
  // A new visit (a link followed, not a forced reload): nothing under /pkg/ goes to the server.
  await page.goto('/login');
  await hydrated(page);
  expect([...fromNetwork], 'the bundle came from the browser cache').toEqual([]);
});
