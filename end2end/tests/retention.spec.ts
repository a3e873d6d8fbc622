import {
  backupTable,
  controlSql,
  createBackup,
  deleteAllBackups,
  expect,
  openConsole,
  test,
  waitUntilIdle,
} from './helpers';

const SCHEDULE = 'e2e-retention';

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test.afterEach(async () => {
  await controlSql('DELETE FROM schedules WHERE name = $1', [SCHEDULE]);
});

type Report = { dry_run: boolean; removals: { filename: string; rule: string }[] };

test('a pinned backup is kept by retention until it is unpinned', async ({ page }, testInfo) => {
  await deleteAllBackups(page.request);
  await page.getByRole('button', { name: 'Refresh' }).click();
  const older = await createBackup(page, `pin older ${Date.now()}`);
  const newer = await createBackup(page, `pin newer ${Date.now()}`);

  // Both belong to a schedule that keeps only its newest backup.
  await controlSql(
    `INSERT INTO schedules (name, cron, timezone, enabled, next_run_at, created_by_name,
                            keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
     VALUES ($1, '@daily', 'Europe/Berlin', false, NULL, 'e2e', 1, 0, 0, 0, 0, 0)`,
    [SCHEDULE],
  );
  await controlSql(
    `UPDATE backup_history SET schedule_id = (SELECT id FROM schedules WHERE name = $1)
     WHERE filename = ANY($2)`,
    [SCHEDULE, [older.name, newer.name]],
  );
  const preview = async (): Promise<Report> => {
    const res = await page.request.post('/api/admin/backup/retention/preview');
    expect(res.status()).toBe(200);
    return res.json();
  };
  const before = await preview();
  expect(before.dry_run).toBe(true);
  expect(before.removals.map((r) => r.filename)).toEqual([older.name]);
  expect(before.removals[0].rule).toContain(`schedule "${SCHEDULE}": beyond the last 1`);

  // Pin the older one from its details.
  await older.row.getByRole('button', { name: `Details of ${older.name}` }).click();
  const details = page.getByRole('dialog', { name: older.name });
  const pin = details.getByTestId('pin');
  await expect(pin.getByRole('button', { name: `Pin ${older.name}` })).toBeDisabled();
  await pin.getByLabel('Keep this backup whatever retention says, because…').fill('before the term upgrade');
  await pin.getByRole('button', { name: `Pin ${older.name}` }).click();
  await expect(pin).toContainText('Pinned: “before the term upgrade” by e2e-admin');
  await page.screenshot({ path: testInfo.outputPath('pinned-details.png') });
  await page.keyboard.press('Escape');
  await expect(details).toBeHidden();
  await expect(older.row.getByTestId('pinned-badge')).toBeVisible();
  await expect(older.row.getByTestId('pinned-badge')).toHaveAttribute('title', 'Pinned: before the term upgrade');

  // Retention now keeps it: the dry run and a real pass agree.
  expect((await preview()).removals).toEqual([]);
  const pass = await page.request.post('/api/admin/backup/prune');
  expect(pass.status()).toBe(200);
  expect(((await pass.json()) as Report).removals).toEqual([]);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(backupTable(page).getByRole('row').filter({ hasText: older.name })).toHaveCount(1);

  // A pinned backup is not deleted by hand either.
  const refused = await page.request.delete(`/api/admin/backup/${await older.row.getAttribute('data-backup-id')}`);
  expect(refused.status()).toBe(409);
  expect((await refused.json()).error.message).toContain('pinned');

  // Unpinned, the next pass lets it go, and says why in the activity log.
  await older.row.getByRole('button', { name: `Details of ${older.name}` }).click();
  await details.getByTestId('pin').getByRole('button', { name: 'Unpin' }).click();
  await expect(details.getByTestId('pin').getByRole('button', { name: `Pin ${older.name}` })).toBeVisible();
  await page.keyboard.press('Escape');
  const after = await page.request.post('/api/admin/backup/prune');
  expect(((await after.json()) as Report).removals.map((r) => r.filename)).toEqual([older.name]);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(backupTable(page).getByRole('row').filter({ hasText: older.name })).toHaveCount(0);
  await expect(backupTable(page).getByRole('row').filter({ hasText: newer.name })).toHaveCount(1);
  await page.getByText('Recent activity').click();
  const activity = page.getByRole('list', { name: 'Recent activity' });
  // One entry per deletion, naming the backup and the rule, besides the pass's own entry.
  const removed = activity.getByRole('listitem').filter({ hasText: 'removed by retention' }).filter({ hasText: older.name });
  await expect(removed).toHaveCount(1);
  await expect(removed).toContainText(`schedule "${SCHEDULE}": beyond the last 1`);
  await expect(activity.getByRole('listitem').filter({ hasText: 'pinned backup' }).filter({ hasText: older.name })).not.toHaveCount(0);
});
