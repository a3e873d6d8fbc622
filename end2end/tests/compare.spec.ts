import { createBackup, expect, expectAccessible, lmsSql, openConsole, test, waitUntilIdle } from './helpers';

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test('Details compares a backup with another, table by table, from their manifests', async ({ page }, testInfo) => {
  test.setTimeout(180_000);
  const stamp = Date.now();
  const older = await createBackup(page, `before the new course ${stamp}`);
  const code = `CMP-${stamp}`;
  await lmsSql(`INSERT INTO courses (code, title) VALUES ('${code}', 'Made between two backups')`);
  try {
    const newer = await createBackup(page, `after the new course ${stamp}`);

    await newer.row.getByRole('button', { name: `Details of ${newer.name}` }).click();
    const details = page.getByRole('dialog');
    const compare = details.getByRole('region', { name: 'Compare with another backup' });
    const picker = compare.getByLabel('Backup');
    const value = await picker.locator('option', { hasText: older.name }).getAttribute('value');
    await picker.selectOption(value ?? '');
    await expect(compare.getByTestId('compare-summary')).toContainText(/1 table changed, 0 added, 0 removed; \d+ the same\./);
    const changed = compare.getByRole('table', { name: 'Tables that differ' });
    const courses = changed.getByRole('row').filter({ hasText: 'courses' });
    await expect(courses.getByRole('cell').nth(3)).toHaveText('+1 row');
    await expectAccessible(page, 'a comparison in Details');
    await page.setViewportSize({ width: 1440, height: 900 });
    await compare.scrollIntoViewIfNeeded();
    await page.screenshot({ path: testInfo.outputPath('compare-desktop.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await compare.scrollIntoViewIfNeeded();
    await page.screenshot({ path: testInfo.outputPath('compare-phone.png') });
    await page.setViewportSize({ width: 1280, height: 720 });
    await details.getByRole('button', { name: 'Close' }).click();
  } finally {
    await lmsSql(`DELETE FROM courses WHERE code = '${code}'`);
  }
});
