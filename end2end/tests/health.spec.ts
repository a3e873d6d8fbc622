import { controlSql, createBackup, expect, openConsole, test, waitUntilIdle } from './helpers';

const SCHEDULE = 'e2e-rpo';

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test.afterEach(async () => {
  await controlSql('DELETE FROM schedules WHERE name = $1', [SCHEDULE]);
});

test('the health banner turns red when a schedule has gone past its RPO', async ({ page }, testInfo) => {
  const banner = page.getByTestId('health-banner');
  // With no schedule enabled, backups happen only when someone clicks.
  await controlSql('UPDATE schedules SET enabled = false, next_run_at = NULL');
  await page.reload();
  await expect(banner).toHaveAttribute('data-state', 'red');
  await expect(banner).toContainText('No schedule is enabled');

  // A schedule with a one-hour RPO and a fresh verified backup of its own.
  const { name } = await createBackup(page, `rpo ${Date.now()}`);
  await controlSql(
    `INSERT INTO schedules (name, cron, timezone, enabled, next_run_at, created_by_name, rpo_seconds)
     VALUES ($1, '@daily', 'Europe/Berlin', true, now() + interval '1 day', 'e2e', 3600)`,
    [SCHEDULE],
  );
  await controlSql(
    `UPDATE backup_history SET schedule_id = (SELECT id FROM schedules WHERE name = $1) WHERE filename = $2`,
    [SCHEDULE, name],
  );
  await page.reload();
  await expect(banner).toHaveAttribute('data-state', 'green');
  await expect(banner).toContainText('Backups are on schedule');

  // Two hours later, still no newer backup: red, naming the schedule, the
  // age and the objective.
  await controlSql(`UPDATE backup_history SET created_at = now() - interval '2 hours' WHERE filename = $1`, [name]);
  await page.reload();
  await expect(banner).toHaveAttribute('data-state', 'red');
  await expect(banner).toHaveAttribute('role', 'alert');
  await expect(banner).toContainText(`Schedule "${SCHEDULE}": its newest verified backup is 2 h old`);
  await expect(banner).toContainText('recovery point objective of 1 h');
  await page.screenshot({ path: testInfo.outputPath('health-red.png') });

  // A monitor sees the same without signing in.
  const monitor = await page.context().request.get('/healthz/backups');
  expect(monitor.status()).toBe(503);
  expect((await monitor.json()).schedules).toEqual([
    expect.objectContaining({ name: SCHEDULE, state: 'red', rpo_seconds: 3600 }),
  ]);
});
