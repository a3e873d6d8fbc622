import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';

import { createBackup, expect, openConsole, test, waitUntilIdle } from './helpers';

/** The servers' backup directory (scripts/test.sh sets and creates it). */
function backupDir(): string {
  const dir = process.env.BACKUP_DIR;
  if (!dir) throw new Error('BACKUP_DIR is not set: run the suite through scripts/test.sh');
  return dir;
}

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test('an unmounted backup directory is shown on the card, and its backups come back with it', async ({ page }) => {
  const dir = backupDir();
  const aside = `${dir}.unmounted`;
  const { row, name } = await createBackup(page, `before the outage ${Date.now()}`);
  const setAside = path.join(path.dirname(dir), name);
  const outage = page.getByTestId('backup-dir-problem');
  try {
    // One archive goes, then the whole directory, as when a disk is unmounted.
    renameSync(path.join(dir, name), setAside);
    renameSync(dir, aside);
    await expect(outage).toContainText('Backups are unavailable', { timeout: 15_000 });
    await expect(outage).toContainText(dir);
    await expect(page.getByRole('button', { name: 'Create backup' })).toBeDisabled();
    await expect(page.getByRole('button', { name: 'Upload backup' })).toBeDisabled();
    await expect(page.getByTestId('busy-reason')).toContainText('backup directory is unavailable');
    // An outage is not a loss: nothing is marked missing meanwhile.
    await expect(row.getByText('completed', { exact: true })).toBeVisible();
  } finally {
    if (existsSync(aside)) renameSync(aside, dir);
  }

  // Back, without that archive: the card clears by itself, and the backup
  // whose file is gone is found missing.
  await expect(outage).toBeHidden({ timeout: 15_000 });
  await expect(page.getByRole('button', { name: 'Create backup' })).toBeEnabled();
  const missing = page.getByTestId('missing-backups');
  await expect(missing).toContainText('1 backup is missing', { timeout: 15_000 });
  await expect(row.getByText('missing', { exact: true })).toBeVisible();

  // The archive is put back: checking again lists it as completed.
  renameSync(setAside, path.join(dir, name));
  await page.getByRole('button', { name: 'Check files again' }).click();
  await expect(page.getByText('1 backup found again and completed.')).toBeVisible();
  await expect(missing).toBeHidden();
  await expect(row.getByText('completed', { exact: true })).toBeVisible();
});
