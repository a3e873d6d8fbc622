import { backupTable, createBackup, expect, expectAccessible, lmsSql, openConsole, test, waitUntilIdle } from './helpers';

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test('a restore drill from Details restores the backup aside and marks it restore-tested', async ({ page }, testInfo) => {
  test.setTimeout(240_000);
  const notes = `drilled ${Date.now()}`;
  const { row, name } = await createBackup(page, notes);
  const before = Number((await lmsSql('SELECT count(*) AS n FROM courses')).rows[0].n);

  await row.getByRole('button', { name: `Details of ${name}` }).click();
  const details = page.getByRole('dialog');
  await expect(details.getByTestId('drill-fact')).toContainText('never tested');
  await details.getByRole('button', { name: 'Run restore drill' }).click();
  await expect(details).toBeHidden();

  // It runs as a job like any other, then says what it found.
  await expect(page.getByText(`Restore drill of ${name} in progress`)).toBeVisible();
  // The outcome toasts (and the activity log says it too).
  const toast = page.locator('.thaw-toast-body').filter({ hasText: /^Restore-tested in [0-9.]+ s: the copy matched the backup/ });
  await expect(toast).toBeVisible({ timeout: 180_000 });
  const badge = row.getByTestId('drill-badge');
  await expect(badge).toHaveText('restore-tested');
  await expect(badge).toHaveAttribute('title', /^restore-tested on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC, [0-9.]+ s$/);
  await expectAccessible(page, 'the list with a restore-tested backup');
  await page.screenshot({ path: testInfo.outputPath('restore-tested.png') });

  await row.getByRole('button', { name: `Details of ${name}` }).click();
  await expect(page.getByRole('dialog').getByTestId('drill-fact')).toContainText(/restore-tested on .*, [0-9.]+ s/);
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

  // The live database was never touched, and nothing is left beside it.
  expect(Number((await lmsSql('SELECT count(*) AS n FROM courses')).rows[0].n)).toBe(before);
  const scratch = await lmsSql("SELECT count(*) AS n FROM pg_database WHERE datname LIKE '%\\_drill\\_%'");
  expect(Number(scratch.rows[0].n)).toBe(0);
  await expect(backupTable(page)).toBeVisible();
});
