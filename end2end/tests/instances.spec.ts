import { test, expect } from '@playwright/test';
import { backupTable, openConsole, waitUntilIdle } from './helpers';

// scripts/test.sh starts a second server on the same databases and backup
// directory, as a load balancer would have it.
const second = process.env.E2E_SECOND_URL;

test('a backup started through one server shows live on the console of another', async ({ page, browser }) => {
  test.setTimeout(120_000);
  if (!second) throw new Error('E2E_SECOND_URL is not set: run the suite through scripts/test.sh');
  await openConsole(page);
  await waitUntilIdle(page.request);

  // The session lives in the shared control database; cookies belong to the
  // host, not the port, so the same administrator is signed in on both.
  const other = await browser.newContext({ baseURL: second });
  const otherPage = await other.newPage();
  await openConsole(otherPage);
  expect(new URL(otherPage.url()).origin).toBe(second);
  await expect(otherPage.getByRole('button', { name: 'Create backup' })).toBeEnabled();

  const notes = `started on the first server ${Date.now()}`;
  const started = await page.request.post('/api/admin/backup/create', { data: { notes } });
  expect(started.status()).toBe(202);

  const panel = otherPage.getByRole('region', { name: 'Running operation' });
  await expect(panel).toContainText('Backup in progress — started by e2e-admin');
  await expect(otherPage.getByRole('button', { name: 'Create backup' })).toBeDisabled();
  const refused = await otherPage.request.post('/api/admin/backup/create', { data: {} });
  expect(refused.status()).toBe(409);
  expect((await refused.json()).error.message).toContain('e2e-admin');

  // When it ends, the second console lists it, without a reload.
  const row = backupTable(otherPage).getByRole('row').filter({ hasText: notes });
  await expect(row.getByText('completed', { exact: true })).toBeVisible({ timeout: 90_000 });
  await expect(panel).toBeHidden();
  await other.close();
});
