import { type Page } from '@playwright/test';

import {
  admin,
  backupTable,
  createBackup,
  expect,
  expectAccessible as scan,
  hydrated,
  openConsole,
  signIn,
  test,
  waitUntilIdle,
} from './helpers';

// Every screen an administrator meets, scanned with axe-core at a desktop
// and a phone size: the sign-in page, the console at rest and during a job,
// and each dialog. No serious or critical violation is allowed.

const SIZES = [
  { name: 'desktop', width: 1440, height: 900 },
  { name: 'phone', width: 390, height: 844 },
] as const;

for (const size of SIZES) {
  test.describe(`at ${size.name} size (${size.width}×${size.height})`, () => {
    test.use({ viewport: { width: size.width, height: size.height } });

    test('the sign-in page, empty, with its checks and after a refused sign-in', async ({
      browser,
      consoleErrors,
    }) => {
      consoleErrors.expect(/401/);
      const context = await browser.newContext({ viewport: { width: size.width, height: size.height } });
      const page = await context.newPage();
      try {
        await page.goto('/login');
        await hydrated(page);
        await scan(page, 'the sign-in page');
        // Empty fields pointed out in the page.
        await page.getByRole('button', { name: 'Sign in' }).click();
        await expect(page.getByText('Enter your username.')).toBeVisible();
        await scan(page, 'the sign-in page with its field checks');
        await signIn(page, { username: admin.username, password: 'not the password' });
        await expect(page.getByRole('alert')).toBeVisible();
        await scan(page, 'the sign-in page after a refused sign-in');
        // What everyone signed out by a restore sees.
        await page.goto('/login?after=restore&backup=backup_20261130_230450.dump&by=e2e-admin');
        await hydrated(page);
        await expect(page.getByRole('status')).toContainText('backup_20261130_230450.dump');
        await scan(page, 'the sign-in page after a restore');
      } finally {
        await context.close();
      }
    });

    test('the console at rest, during a backup, and every dialog', async ({ page }) => {
      test.setTimeout(180_000);
      await openConsole(page);
      await waitUntilIdle(page.request);
      const { row, name } = await createBackup(page, `accessibility ${size.name} ${Date.now()}`);
      await page.reload();
      await hydrated(page);
      await expect(row).toBeVisible();
      await scan(page, 'the console at rest');

      // The activity log, folded out.
      await page.getByText('Recent activity', { exact: true }).click();
      await expect(page.getByLabel('Kind')).toBeVisible();
      await scan(page, 'the console with its activity log open');

      const dialogs: { open: () => Promise<void>; title: string | RegExp }[] = [
        {
          open: () => page.getByRole('button', { name: 'Create backup' }).click(),
          title: 'Create a backup',
        },
        {
          open: () => page.getByRole('button', { name: 'Upload backup' }).click(),
          title: 'Upload a backup',
        },
        {
          open: () => row.getByRole('button', { name: `Restore ${name}` }).click(),
          title: 'Restore this backup?',
        },
        {
          open: () => row.getByRole('button', { name: `Delete ${name}` }).click(),
          title: 'Delete this backup?',
        },
        {
          open: () => row.getByRole('button', { name: `Details of ${name}` }).click(),
          title: name,
        },
      ];
      for (const { open, title } of dialogs) {
        await open();
        const dialog = page.getByRole('dialog', { name: title });
        await expect(dialog).toBeVisible();
        // Wait for what the dialog loads (the restore dialog's administrators).
        await expect(dialog.getByText(/Loading|Reading/)).toHaveCount(0, { timeout: 15_000 });
        await scan(page, `the dialog "${title}"`);
        await page.keyboard.press('Escape');
        await expect(dialog).toBeHidden();
      }

      // The restore dialog filled in, with the wrong name first.
      await row.getByRole('button', { name: `Restore ${name}` }).click();
      const restore = page.getByRole('dialog', { name: 'Restore this backup?' });
      await restore.getByRole('checkbox').check();
      await restore.getByLabel(/Type the backup's name/).fill(`${name}x`);
      await expect(restore.getByText('does not match', { exact: false })).toBeVisible();
      await scan(page, 'the restore dialog with a wrong name');
      await page.keyboard.press('Escape');

      // The undo dialog needs a restore before it: the restore test in
      // backups.spec.ts scans it at both sizes.

      // During a job: the running panel, and the buttons that wait for it.
      await page.getByRole('button', { name: 'Create backup' }).click();
      const create = page.getByRole('dialog', { name: 'Create a backup' });
      await create.getByRole('button', { name: 'Start backup' }).click();
      await expect(create).toBeHidden();
      const panel = page.getByRole('region', { name: 'Running operation' });
      await expect(panel.getByRole('progressbar')).toBeVisible({ timeout: 30_000 });
      await scan(page, 'the console during a backup');
      await waitUntilIdle(page.request);
      await expect(backupTable(page)).toBeVisible();
    });
  });
}
