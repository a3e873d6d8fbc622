import { createBackup, expect, openConsole, test, waitUntilIdle } from './helpers';

// The activity log answers "who did what": refusals under the file's own
// name, filters by kind and by person; and the hourly limit on manual
// backups is shown before anyone opens the dialog, in the viewer's time.

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test('a refused upload is logged under its own file name, and the log filters by kind and person', async ({
  page,
  consoleErrors,
}) => {
  consoleErrors.expect(/status of 422/);
  const file = `term-end-export-${Date.now()}.sql`;
  await page.getByRole('button', { name: 'Upload backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Upload a backup' });
  await dialog.locator('input[type=file]').setInputFiles({
    name: file,
    mimeType: 'application/sql',
    buffer: Buffer.from('--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n'),
  });
  await expect(dialog.getByRole('alert')).toContainText('plain SQL');
  await page.keyboard.press('Escape');

  await page.getByText('Recent activity', { exact: true }).click();
  const log = page.getByRole('list', { name: 'Recent activity' });
  const refused = log.getByRole('listitem').filter({ hasText: `refused upload of ${file}` });
  await expect(refused).toHaveCount(1);
  await expect(refused).toContainText('e2e-admin');
  await expect(refused).toContainText('failed');
  // Not under a generated name that a later upload would be given.
  await expect(log.getByRole('listitem').filter({ hasText: /refused.*upload_\d{8}/ })).toHaveCount(0);

  const kind = page.getByLabel('Kind');
  const person = page.getByLabel('Person');
  await kind.selectOption({ label: 'Refusals' });
  await expect(refused).toHaveCount(1);
  for (const item of await log.getByRole('listitem').all()) {
    await expect(item).toContainText('failed');
  }
  await kind.selectOption({ label: 'Sign-ins' });
  await expect(refused).toHaveCount(0);
  await expect(log.getByRole('listitem').first()).toContainText(/signed (in|out)/);
  await kind.selectOption({ label: 'Everything' });
  await person.fill('nobody-by-this-name');
  await expect(page.getByText('Nothing matches this filter.')).toBeVisible();
  await person.fill('e2e-admin');
  await kind.selectOption({ label: 'Refusals' });
  await expect(refused).toHaveCount(1);
});

test('the hourly limit shows on the Create button before the dialog, in the viewer\'s time zone', async ({
  browser,
  page,
}) => {
  const limited = process.env.E2E_LIMITED_URL;
  if (!limited) throw new Error('E2E_LIMITED_URL is not set: run the suite through scripts/test.sh');
  // A manual backup by this administrator within the hour: on the server
  // that allows one an hour, the next one waits.
  await createBackup(page, `before the limit ${Date.now()}`);
  const timezoneId = 'Pacific/Auckland';
  const context = await browser.newContext({ baseURL: limited, timezoneId, locale: 'en-GB' });
  const other = await context.newPage();
  try {
    await openConsole(other);
    expect(new URL(other.url()).origin).toBe(limited);
    const create = other.getByRole('button', { name: 'Create backup' });
    await expect(create).toBeDisabled();
    const notice = other.getByTestId('rate-limit');
    await expect(notice).toContainText('Next manual backup possible at');
    // The moment, written as the viewer's clock reads it, not in UTC.
    const time = notice.locator('time');
    const at = new Date((await time.getAttribute('datetime'))!);
    expect(at.getTime()).toBeGreaterThan(Date.now());
    expect(at.getTime()).toBeLessThanOrEqual(Date.now() + 3_600_000);
    const expected = at.toLocaleString('en-GB', {
      timeZone: timezoneId,
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
    });
    await expect(time.locator('.absolute')).toHaveText(expected);
    await expect(notice).not.toContainText('UTC');
  } finally {
    await context.close();
  }
});
