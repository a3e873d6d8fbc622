import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import { admin, expect, hydrated, signIn, test } from './helpers';

test('an administrator creates a backup, sees it listed and downloads exactly it', async ({ page }) => {
  await signIn(page, admin);
  await expect(page).toHaveURL(/\/admin$/);
  await hydrated(page);

  const note = `e2e ${Date.now()}`;
  await page.getByLabel('Notes for the new backup (optional)').fill(note);
  await page.getByRole('button', { name: 'Create backup' }).click();

  const table = page.getByRole('table', { name: 'Database Backup & Restore' });
  const row = table.getByRole('row').filter({ hasText: note });
  await expect(row.getByText('completed')).toBeVisible({ timeout: 60_000 });

  const shown = await row.locator('.checksum').getAttribute('title');
  const sha = shown?.replace('SHA-256 ', '') ?? '';
  expect(sha).toMatch(/^[0-9a-f]{64}$/);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('link', { name: 'Download' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^backup_\d{8}_\d{6}(_\d+)?\.dump$/);
  const bytes = await readFile(await download.path());
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha);
});
