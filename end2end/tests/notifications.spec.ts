import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';

import { controlSql, expect, expectAccessible, openConsole, test } from './helpers';

const NAME = 'e2e-ops-hook';
const SECRET = 'e2e-signing-secret';

/// A webhook receiver on the loopback that checks the signature the way its
/// documentation says: HMAC-SHA256 of "<t>.<raw body>".
function receiver(): Promise<{ server: Server; url: string; got: { headers: IncomingHttpHeaders; body: any }[] }> {
  const got: { headers: IncomingHttpHeaders; body: any }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const header = String(req.headers['x-lms-signature'] ?? '');
      const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2)));
      const expected = createHmac('sha256', SECRET).update(`${parts.t}.`).update(raw).digest();
      const given = Buffer.from(parts.v1 ?? '', 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeHead(401).end('bad signature');
        return;
      }
      const body = JSON.parse(raw.toString('utf8'));
      got.push({ headers: req.headers, body });
      res.writeHead(202, { 'Content-Type': 'text/plain' }).end(`accepted ${body.id}`);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/hooks/e2e-token`, got });
    }),
  );
}

test.beforeEach(async () => {
  await controlSql('DELETE FROM notification_channels WHERE name = $1', [NAME]);
});

test.afterEach(async () => {
  await controlSql('DELETE FROM notification_channels WHERE name = $1', [NAME]);
});

test('a webhook set up in the console answers a test, signed, and its secrets stay hidden', async ({ page }, testInfo) => {
  const hook = await receiver();
  try {
    await openConsole(page);
    const panel = page.getByTestId('channels');
    await panel.locator('summary').click();
    await panel.getByRole('button', { name: 'Add channel' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a notification channel' });
    const save = dialog.getByRole('button', { name: 'Save channel' });
    await expect(save).toBeDisabled();
    await dialog.getByLabel('Name').fill(NAME);
    await dialog.getByLabel('URL (kept secret)').fill(hook.url);
    await dialog.getByLabel('Signing secret (optional, kept secret)').fill(SECRET);
    // Failures are chosen already; restores are added.
    await expect(dialog.getByLabel('Backup failed')).toBeChecked();
    await dialog.getByLabel('Restore finished').check();
    await expectAccessible(page, 'the channel form');
    await page.screenshot({ path: testInfo.outputPath('channel-form.png') });
    await save.click();
    await expect(dialog).toBeHidden();

    const item = panel.locator(`[data-channel="${NAME}"]`);
    await expect(item).toHaveAttribute('data-state', 'nothing sent yet');
    await expect(item).toContainText(hook.url.replace('/hooks/e2e-token', '/…'));
    await expect(item).toContainText('Restore finished');
    // The URL's token and the signing secret are nowhere on the page.
    await expect(page.locator('body')).not.toContainText('e2e-token');
    await expect(page.locator('body')).not.toContainText(SECRET);

    await item.getByRole('button', { name: `Send test to ${NAME}` }).click();
    const answer = item.getByTestId('test-answer');
    await expect(answer).toContainText('Delivered. The receiver answered: HTTP 202 Accepted: accepted');
    expect(hook.got).toHaveLength(1);
    expect(hook.got[0].body.event).toBe('test');
    await expect(answer).toContainText(hook.got[0].body.id);
    expect(hook.got[0].headers['x-lms-event-id']).toBe(hook.got[0].body.id);
    await page.screenshot({ path: testInfo.outputPath('channel-tested.png'), fullPage: true });

    // A receiver that is gone: said in words, without the URL.
    hook.server.close();
    await item.getByRole('button', { name: `Send test to ${NAME}` }).click();
    await expect(answer).toContainText('Not delivered: could not connect to the receiver');
    await expect(answer).not.toContainText('e2e-token');
  } finally {
    hook.server.close();
  }
});

test('the channel list reads on a phone', async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await controlSql(
    `INSERT INTO notification_channels (name, kind, format, shown_target, webhook_url, events,
         failing_since, consecutive_failures, last_error)
     VALUES ($1, 'webhook', 'slack', 'https://hooks.example-chat-service-with-a-long-name.org/…',
         'https://hooks.example-chat-service-with-a-long-name.org/T000/B000/XXXX',
         '{backup_failed,offsite_failed,rpo_breached,lock_stuck,drill_failed}', now() - interval '2 hours', 7,
         'the receiver answered HTTP 404 Not Found: no_service')`,
    [NAME],
  );
  await openConsole(page);
  const panel = page.getByTestId('channels');
  await panel.locator('summary').click();
  const item = panel.locator(`[data-channel="${NAME}"]`);
  await expect(item).toHaveAttribute('data-state', 'failing');
  await expect(item).toContainText('(7 tries): the receiver answered HTTP 404');
  await item.scrollIntoViewIfNeeded();
  // Nothing sticks out sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await expectAccessible(page, 'the channel list on a phone');
  await item.screenshot({ path: testInfo.outputPath('channel-failing-phone.png') });
});
