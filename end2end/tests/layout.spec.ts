import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import {
  backupTable,
  controlSql,
  createBackup,
  deleteAllBackups,
  expect,
  hydrated,
  openConsole,
  test,
  waitUntilIdle,
} from './helpers';

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

/** Where each marker sits, to compare before and after hydration. */
async function positions(page: import('@playwright/test').Page, selectors: string[]) {
  const out: Record<string, number> = {};
  for (const s of selectors) {
    const box = await page.locator(s).first().boundingBox();
    expect(box, s).not.toBeNull();
    out[s] = Math.round(box!.y);
  }
  return out;
}

test('nothing moves when the page hydrates', async ({ page, browser }) => {
  await createBackup(page, `layout ${Date.now()}`);
  const markers = ['#backups-title', '.backup-actions', '.backup-table thead', '.activity summary'];
  await page.reload();
  await openConsole(page);
  const hydratedAt = await positions(page, markers);

  // The same page as the server streamed it, never hydrated (the WASM
  // bundle is held back).
  const state = await page.context().storageState();
  const plain = await browser.newContext({ storageState: state });
  const ssr = await plain.newPage();
  await ssr.route('**/*.wasm', (route) => route.abort());
  await ssr.goto('/admin');
  await expect(ssr.locator('.backup-table thead')).toBeVisible();
  await expect(ssr.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
  const renderedAt = await positions(ssr, markers);
  await plain.close();
  expect(hydratedAt).toEqual(renderedAt);
});

test('dialogs keep the keyboard inside and close on Escape', async ({ page }) => {
  const create = page.getByRole('button', { name: 'Create backup' });
  await create.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Create a backup' });
  await expect(dialog).toBeVisible();
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    const inside = await dialog.evaluate((d) => d.contains(document.activeElement));
    expect(inside, `focus after ${i + 1} Tab presses`).toBe(true);
  }
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
});

test('works on a 390 px wide phone screen', async ({ page }) => {
  await createBackup(page, `phone ${Date.now()}`);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await openConsole(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, 'the page itself never scrolls sideways').toBeLessThanOrEqual(0);
  for (const name of ['Create backup', 'Upload backup', 'Refresh']) {
    const button = page.getByRole('button', { name });
    await button.scrollIntoViewIfNeeded();
    await expect(button).toBeInViewport();
    const box = await button.boundingBox();
    expect(box!.x + box!.width, name).toBeLessThanOrEqual(390);
  }
  // The wide list scrolls inside its own box.
  const row = backupTable(page).getByRole('row').nth(1);
  await row.getByRole('button', { name: /^Restore / }).scrollIntoViewIfNeeded();
  await row.getByRole('button', { name: /^Restore / }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore this backup?' });
  const box = await dialog.boundingBox();
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(390);
  await page.keyboard.press('Escape');
});

/**
 * The pictures in docs/screenshots: the card at rest, during a job and the
 * restore dialog. Taken on every run (kept with the test's output);
 * `UPDATE_SCREENSHOTS=1 ./scripts/test.sh` also copies them into the docs.
 */
test('screenshots of the card at rest, during a job and of the restore dialog', async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1280, height: 900 });
  await deleteAllBackups(page.request);
  const { name } = await createBackup(page, 'before the spring term');
  const shots: string[] = [];
  const shoot = async (file: string, target: import('@playwright/test').Locator) => {
    const out = testInfo.outputPath(file);
    await target.screenshot({ path: out, animations: 'disabled' });
    shots.push(out);
  };
  await page.reload();
  await openConsole(page);
  await page.mouse.move(0, 0);
  await shoot('card-at-rest.png', page.locator('.backup-card'));

  await page.getByRole('button', { name: 'Create backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a backup' });
  await dialog.getByLabel('Notes (optional)').fill('nightly check');
  await dialog.getByRole('button', { name: 'Start backup' }).click();
  const panel = page.getByRole('region', { name: 'Running operation' });
  await expect(panel.getByRole('progressbar')).toHaveAttribute('aria-valuenow', /^0\.[1-9]/, { timeout: 30_000 });
  await shoot('card-during-backup.png', page.locator('.backup-card'));
  await waitUntilIdle(page.request);

  await backupTable(page).getByRole('button', { name: `Restore ${name}` }).click();
  const restore = page.getByRole('dialog', { name: 'Restore this backup?' });
  await expect(restore.getByTestId('restore-summary')).toBeVisible();
  await expect(restore.getByTestId('restore-admins')).toBeVisible();
  await restore.getByRole('checkbox').check();
  await restore.getByLabel(/Type the backup's name/).fill(name);
  await shoot('restore-dialog.png', restore);
  await page.keyboard.press('Escape');

  if (process.env.UPDATE_SCREENSHOTS) {
    const docs = path.join(__dirname, '..', '..', 'docs', 'screenshots');
    await mkdir(docs, { recursive: true });
    for (const shot of shots) await copyFile(shot, path.join(docs, path.basename(shot)));
  }
});

test('during the switch every page is a friendly maintenance notice, then the console is back', async ({
  page,
  consoleErrors,
}) => {
  consoleErrors.expect(/status of 503/);
  // As during a real switch: a live operation on another server holds the
  // lock (otherwise every server repairs maintenance mode left on alone).
  await controlSql(
    `INSERT INTO operation_lock (id, holder_instance, operation_type, locked_by_name)
     VALUES (1, 'another-server:1:e2e', 'restore', 'e2e-admin')`,
  );
  await controlSql(
    `INSERT INTO settings (key, value, updated_at)
     VALUES ('maintenance', jsonb_build_object('reason', 'e2e', 'since', now()), now())
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
  );
  try {
    for (const path of ['/admin', '/login', '/']) {
      const response = await page.goto(path);
      expect(response?.status(), path).toBe(503);
      expect(response?.headers()['retry-after'], path).toBe('5');
      await expect(page.getByRole('heading', { name: 'Back in a moment' })).toBeVisible();
    }
  } finally {
    await controlSql("DELETE FROM settings WHERE key = 'maintenance'");
    await controlSql('DELETE FROM operation_lock');
  }
  // The notice reloads itself; once the switch is over the console answers again.
  await page.goto('/admin');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Database Backup & Restore' })).toBeVisible();
});
