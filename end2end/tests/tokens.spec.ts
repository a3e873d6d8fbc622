import { request as newRequest } from '@playwright/test';

import { backupTable, controlSql, expect, expectAccessible, openConsole, test, waitUntilIdle } from './helpers';

const NAME = 'e2e-deploy';

test.beforeEach(async ({ page }) => {
  await controlSql('DELETE FROM api_tokens WHERE name = $1', [NAME]);
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test.afterEach(async () => {
  await controlSql('DELETE FROM api_tokens WHERE name = $1', [NAME]);
});

test('an API token made in the console takes a backup without a browser, until it is revoked', async ({
  page,
  consoleErrors,
  baseURL,
}, testInfo) => {
  // The revoked token's refusal is a 401 the test itself asks for.
  consoleErrors.expect(/401/);
  const panel = page.getByTestId('tokens');
  await panel.locator('summary').click();
  await panel.getByRole('button', { name: 'Create token' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create an API token' });
  const create = dialog.getByRole('button', { name: 'Create token' });
  await expect(create).toBeDisabled();
  await dialog.getByLabel('Name (who uses it)').fill(NAME);
  await dialog.getByLabel(/start a backup/).check();
  await dialog.getByLabel(/read what is running/).check();
  await expect(create).toBeEnabled();
  await expectAccessible(page, 'the token form');
  await create.click();

  // Shown once, in the dialog that made it.
  const secretBox = dialog.getByTestId('token-secret').getByLabel('Token');
  await expect(secretBox).toHaveValue(/^lmsa_[A-Za-z0-9_-]{43}$/);
  const secret = await secretBox.inputValue();
  await expect(dialog).toContainText('it is not shown again');
  await page.screenshot({ path: testInfo.outputPath('token-created.png') });
  await dialog.getByRole('button', { name: 'Done' }).click();
  await expect(dialog).toBeHidden();
  const item = panel.locator(`[data-token="${NAME}"]`);
  await expect(item).toHaveAttribute('data-state', 'live');
  await expect(item).toContainText('backup:create');
  await expect(item).toContainText('status:read');
  await expect(page.locator('body')).not.toContainText(secret);

  // A pipeline: no cookies, the token as a bearer header.
  const pipeline = await newRequest.newContext({
    baseURL,
    extraHTTPHeaders: { Authorization: `Bearer ${secret}` },
  });
  try {
    const started = await pipeline.post('/api/admin/backup/create', { data: { notes: 'before release 42' } });
    expect(started.status()).toBe(202);
    const { job, backup } = await started.json();
    await expect
      .poll(async () => (await (await pipeline.get(`/api/admin/backup/jobs/${job.id}`)).json()).status, {
        timeout: 90_000,
      })
      .toBe('succeeded');
    // Its scopes do not reach the list, let alone a restore.
    expect((await pipeline.get('/api/admin/backup/list')).status()).toBe(403);
    expect((await pipeline.post(`/api/admin/backup/restore/${backup.id}`, { data: { confirm: true } })).status()).toBe(403);

    await page.getByRole('button', { name: 'Refresh' }).click();
    const row = backupTable(page).getByRole('row').filter({ hasText: backup.filename });
    await expect(row).toContainText('token:e2e-deploy');

    // Revoked in the console: refused at once.
    await item.getByRole('button', { name: `Revoke token ${NAME}` }).click();
    await expect(item).toHaveAttribute('data-state', 'revoked');
    await page.screenshot({ path: testInfo.outputPath('token-revoked.png'), fullPage: true });
    expect((await pipeline.get('/api/admin/backup/status')).status()).toBe(401);
  } finally {
    await pipeline.dispose();
  }
  await page.getByText('Recent activity').click();
  const activity = page.getByRole('list', { name: 'Recent activity' });
  await expect(activity.getByRole('listitem').filter({ hasText: 'revoked API token' }).first()).toContainText(NAME);
  const byToken = activity.getByRole('listitem').filter({ hasText: 'token:e2e-deploy' });
  await expect(byToken.filter({ hasText: 'created backup' })).toHaveCount(1);
  await expect(byToken.filter({ hasText: 'was refused' }).first()).toContainText('outside the token');
});

test('the tokens panel on a phone', async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await controlSql(
    `INSERT INTO api_tokens (name, secret_sha256, scopes, created_by_name, expires_at)
     VALUES ($1, sha256('not a real token'::bytea), ARRAY['backup:create', 'backup:read', 'status:read'], 'e2e-admin',
             now() + interval '90 days')`,
    [NAME],
  );
  await page.reload();
  const panel = page.getByTestId('tokens');
  await panel.locator('summary').click();
  const item = panel.locator(`[data-token="${NAME}"]`);
  await item.scrollIntoViewIfNeeded();
  const box = (await item.getByRole('button', { name: `Revoke token ${NAME}` }).boundingBox())!;
  expect(box.x + box.width).toBeLessThanOrEqual(390);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: testInfo.outputPath('tokens-phone.png'), fullPage: true });
  await expectAccessible(page, 'the tokens panel on a phone');
});
