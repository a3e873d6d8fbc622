import { controlSql, expect, openConsole, test, waitUntilIdle } from './helpers';

const SCHEDULE = 'e2e-tokyo';

// The viewer is in New York; the schedule runs on Tokyo time.
test.use({ timezoneId: 'America/New_York', locale: 'en-US' });

test.beforeEach(async ({ page }) => {
  await controlSql('DELETE FROM schedules WHERE name = $1', [SCHEDULE]);
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test.afterEach(async () => {
  await controlSql('DELETE FROM schedules WHERE name = $1', [SCHEDULE]);
});

test('a schedule shows its next runs in its own zone and the viewer’s before it is saved', async ({
  page,
  consoleErrors,
}, testInfo) => {
  // The preview of a zone that does not exist is answered 422, which the
  // browser logs.
  consoleErrors.expect(/422/);
  const panel = page.getByTestId('schedules');
  await panel.getByRole('button', { name: 'Add schedule' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a schedule' });
  await dialog.getByLabel('Name').fill(SCHEDULE);
  await dialog.getByLabel(/^When/).fill('30 2 * * *');

  // A zone that does not exist is named as the field that is wrong.
  await dialog.getByLabel(/^Time zone/).fill('Asia/Nowhere');
  const preview = dialog.getByTestId('schedule-preview');
  await expect(preview.getByRole('alert')).toContainText('timezone: "Asia/Nowhere" is not an IANA time zone');

  await dialog.getByLabel(/^Time zone/).fill('Asia/Tokyo');
  const runs = preview.getByRole('listitem');
  await expect(runs).toHaveCount(5);
  for (let i = 0; i < 5; i++) {
    const run = runs.nth(i);
    await expect(run.locator('.in-zone')).toHaveText(/ 02:30 JST$/);
    // 02:30 in Tokyo is 17:30 UTC the day before, 12:30 in New York (EST).
    const at = new Date((await run.locator('time').getAttribute('datetime'))!);
    expect([at.getUTCHours(), at.getUTCMinutes()]).toEqual([17, 30]);
    await expect(run.locator('time .absolute')).toHaveText(/12:30\s?PM/);
  }
  // New runs are one day apart, in order.
  const first = new Date((await runs.nth(0).locator('time').getAttribute('datetime'))!);
  const second = new Date((await runs.nth(1).locator('time').getAttribute('datetime'))!);
  expect(second.getTime() - first.getTime()).toBe(24 * 3600 * 1000);

  await expect(dialog.getByTestId('retention-preview')).toContainText('saving deletes none');
  await dialog.getByLabel('Keep the last').fill('0');
  await expect(dialog.getByText('keep-last: at least 1')).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Save schedule' })).toBeDisabled();
  await dialog.getByLabel('Keep the last').fill('3');
  await page.screenshot({ path: testInfo.outputPath('schedule-form.png') });
  await dialog.getByRole('button', { name: 'Save schedule' }).click();
  await expect(dialog).toBeHidden();

  const item = panel.locator(`[data-schedule="${SCHEDULE}"]`);
  await expect(item).toContainText('Asia/Tokyo');
  await expect(item).toContainText('the last 3, 14 daily, 8 weekly, 12 monthly');
  await expect(item.locator('.next-in-zone')).toHaveText(/ 02:30 JST$/);
  const saved = await controlSql('SELECT timezone, keep_last, next_run_at FROM schedules WHERE name = $1', [SCHEDULE]);
  expect(saved.rows[0].timezone).toBe('Asia/Tokyo');
  expect(saved.rows[0].keep_last).toBe(3);
  expect(new Date(saved.rows[0].next_run_at).getTime()).toBe(first.getTime());

  // Changing it shows what its policy would delete first (nothing: it has no backups).
  await item.getByRole('button', { name: `Edit schedule ${SCHEDULE}` }).click();
  const edit = page.getByRole('dialog', { name: `Change schedule ${SCHEDULE}` });
  await expect(edit.getByTestId('retention-preview')).toContainText('deletes none of the existing backups');
  await page.keyboard.press('Escape');
  await expect(edit).toBeHidden();
});
