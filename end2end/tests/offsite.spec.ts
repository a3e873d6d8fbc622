import { admin, backupTable, expect, hydrated, signIn, test } from './helpers';

/**
 * The server at E2E_OFFSITE_URL copies backups to a bucket that does not
 * exist: the card says so, each backup shows its copy failed, and the
 * reason is on the badge and in Details. (Its own database and backup
 * directory: the other servers' backups are not its concern.)
 */
const offsite = process.env.E2E_OFFSITE_URL;
const bucket = process.env.E2E_OFFSITE_BUCKET;

test('a backup whose off-site copy failed shows it, with the reason, on every size of screen', async ({
  browser,
}, testInfo) => {
  if (!offsite || !bucket) throw new Error('E2E_OFFSITE_URL is not set: run the suite through scripts/test.sh');
  const context = await browser.newContext({ baseURL: offsite, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  try {
    await signIn(page, admin);
    await expect(page).toHaveURL(/\/admin$/);
    await hydrated(page);

    const target = page.getByTestId('offsite-target');
    await expect(target).toContainText(bucket);
    await expect(target).toContainText('lms');
    await expect(page.getByTestId('offsite-problem')).toContainText(`bucket ${bucket} does not exist`);

    const notes = `off-site ${Date.now()}`;
    await page.getByRole('button', { name: 'Create backup' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create a backup' });
    await dialog.getByLabel('Notes (optional)').fill(notes);
    await dialog.getByRole('button', { name: 'Start backup' }).click();
    await expect(dialog).toBeHidden();

    const row = backupTable(page).getByRole('row').filter({ hasText: notes });
    // The backup itself is complete and verified here; its copy is not,
    // and the toast says so as a warning, not as plain success.
    await expect(row.getByText('completed', { exact: true })).toBeVisible({ timeout: 90_000 });
    const toast = page.getByText('Done, with a note');
    await expect(toast).toBeVisible({ timeout: 30_000 });
    await expect(page.getByText(/does not exist.*It will be tried again/)).toBeVisible();
    const badge = row.getByTestId('offsite-badge');
    await expect(badge).toHaveText('off-site: failed');
    await expect(badge).toHaveAttribute('data-state', 'failed');
    await expect(badge).toHaveAttribute('title', new RegExp(`bucket ${bucket} does not exist`));

    await row.getByRole('button', { name: /^Details of / }).click();
    const details = page.getByRole('dialog').filter({ has: page.getByTestId('offsite-fact') });
    await expect(details.getByTestId('offsite-fact')).toContainText('off-site: failed');
    await expect(details.getByTestId('offsite-fact')).toContainText('does not exist');
    await page.screenshot({ path: testInfo.outputPath('offsite-details-1440.png'), animations: 'disabled' });
    await page.keyboard.press('Escape');

    await page.screenshot({ path: testInfo.outputPath('offsite-1440.png'), fullPage: true, animations: 'disabled' });
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(badge).toBeVisible();
    await expect(page.getByTestId('offsite-problem')).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('offsite-390.png'), fullPage: true, animations: 'disabled' });
    // The page never carries the target's secret.
    expect(await page.content()).not.toContain('e2e-access-key');
  } finally {
    await context.close();
  }
});
