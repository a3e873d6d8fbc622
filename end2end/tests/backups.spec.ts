import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';

import { type Browser, type Page } from '@playwright/test';

import {
  admin,
  backupTable,
  controlSql,
  createBackup,
  deleteAllBackups,
  expect,
  expectAccessible,
  lmsSql,
  openConsole,
  tableCounts,
  test,
  waitUntilIdle,
} from './helpers';

// Every test starts from a known state: signed in, nothing running, and
// (where it matters) an empty catalog.
test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

test('create a backup, see it listed with its details, and download exactly it', async ({ page }) => {
  await deleteAllBackups(page.request);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.getByText('No backups yet')).toBeVisible();

  const note = `listed ${Date.now()}`;
  const { row, name } = await createBackup(page, note);
  await expect(row.getByRole('cell').nth(3)).toHaveText('Manual');
  await expect(row.getByRole('cell').nth(5)).toHaveText('e2e-admin');
  await expect(row.locator('time')).toHaveAttribute('datetime', /^\d{4}-\d{2}-\d{2}T/);
  await expect(row.locator('.relative')).toHaveText('just now');
  await expect(page.getByTestId('stored')).toContainText('1 backup');
  await expect(page.getByTestId('last-backup')).toContainText('completed');

  await row.getByRole('button', { name: `Details of ${name}` }).click();
  const details = page.getByRole('dialog', { name });
  const tables = details.getByRole('table', { name: 'Tables in this backup' });
  for (const [table, rows] of await tableCounts()) {
    const line = tables.getByRole('row').filter({ has: page.getByRole('cell', { name: table, exact: true }) });
    await expect(line.getByRole('cell').nth(1)).toHaveText(Number(rows).toLocaleString('en-US'));
  }
  await page.keyboard.press('Escape');
  await expect(details).toBeHidden();

  const sha = await row.locator('.checksum').getAttribute('data-sha256');
  expect(sha).toMatch(/^[0-9a-f]{64}$/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('link', { name: `Download ${name}` }).click(),
  ]);
  expect(download.suggestedFilename()).toBe(name);
  const bytes = await readFile(await download.path());
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha);

  // The activity list names who did what.
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('Recent activity').click();
  const activity = page.getByRole('list', { name: 'Recent activity' });
  await expect(activity.getByRole('listitem').filter({ hasText: 'downloaded backup' }).first()).toContainText('e2e-admin');
  await expect(activity.getByRole('listitem').filter({ hasText: 'created backup' }).first()).toContainText(name);
});

test('the list is newest first and paginated when long', async ({ page }) => {
  await deleteAllBackups(page.request);
  // Catalog rows of failed backups (no files) make a long list cheaply.
  await controlSql(
    `INSERT INTO backup_history (filename, kind, status, created_by_name, created_at, notes)
     SELECT format('backup_20200101_%s.dump', lpad(g::text, 6, '0')), 'manual', 'failed', 'seed',
            now() - g * interval '1 hour', format('old %s', g)
     FROM generate_series(1, 24) g`,
  );
  await page.getByRole('button', { name: 'Refresh' }).click();
  const rows = backupTable(page).getByRole('row');
  await expect(rows).toHaveCount(21); // header + 20
  await expect(rows.nth(1)).toContainText('old 1');
  await expect(rows.nth(20)).toContainText('old 20');
  const pager = page.getByRole('navigation', { name: 'Backup list pages' });
  await expect(pager).toContainText('24 backups');
  await pager.getByRole('button', { name: '2' }).click();
  await expect(rows).toHaveCount(5);
  await expect(rows.nth(4)).toContainText('old 24');
  await deleteAllBackups(page.request);
});

test('delete asks first, then removes the backup', async ({ page }) => {
  const { row, name } = await createBackup(page, `to delete ${Date.now()}`);
  await row.getByRole('button', { name: `Delete ${name}` }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete this backup?' });
  await expect(dialog).toContainText(name);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(row).toBeVisible();

  await row.getByRole('button', { name: `Delete ${name}` }).click();
  await dialog.getByRole('button', { name: 'Delete backup' }).click();
  await expect(dialog).toBeHidden();
  await expect(backupTable(page).getByText(name)).toHaveCount(0);
  const listed = await (await page.request.get('/api/admin/backup/list?limit=200')).json();
  expect(listed.backups.map((b: { filename: string }) => b.filename)).not.toContain(name);
});

test('the restore button waits for the checkbox and the exact name', async ({ page }) => {
  const { row, name } = await createBackup(page, `confirm ${Date.now()}`);
  await row.getByRole('button', { name: `Restore ${name}` }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore this backup?' });
  await expect(dialog).toContainText('All current data in the LMS database will be replaced');
  await expect(dialog).toContainText('signed out');
  await expect(dialog).toContainText('can be undone');
  await expect(dialog.getByTestId('restore-summary')).toContainText(/\d+ tables with [\d,]+ rows/);
  const go = dialog.getByRole('button', { name: 'Restore', exact: true });
  const checkbox = dialog.getByRole('checkbox', { name: 'I understand this will replace all current data' });
  const typed = dialog.getByLabel(/Type the backup's name/);

  await expect(go).toBeDisabled();
  await checkbox.check();
  await expect(go).toBeDisabled();
  await typed.fill(name.slice(0, -1));
  await expect(go).toBeDisabled();
  await typed.fill(name);
  await expect(go).toBeEnabled();
  await checkbox.uncheck();
  await expect(go).toBeDisabled();
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  // Opening it again starts from scratch.
  await row.getByRole('button', { name: `Restore ${name}` }).click();
  await expect(checkbox).not.toBeChecked();
  await expect(typed).toHaveValue('');
  await page.keyboard.press('Escape');
});

test('the restore dialog names the backup\'s administrators and warns an admin it would lock out', async ({
  page,
}, testInfo) => {
  // A backup whose users table has this administrator under another name
  // (the session follows the account's id, so it carries on meanwhile).
  const was = `e2e-admin-was-${Date.now()}`;
  await lmsSql('UPDATE users SET username = $1 WHERE username = $2', [was, admin.username]);
  const locked = await createBackup(page, `without me ${Date.now()}`).finally(() =>
    lmsSql('UPDATE users SET username = $1 WHERE username = $2', [admin.username, was]),
  );
  const kept = await createBackup(page, `with me ${Date.now()}`);
  await page.reload(); // no toasts over the dialog
  await openConsole(page);

  await kept.row.getByRole('button', { name: `Restore ${kept.name}` }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore this backup?' });
  await expect(dialog.getByTestId('restore-admins')).toContainText(
    `Administrators in this backup: ${admin.username} (E2E Admin, you)`,
  );
  await expect(dialog.getByTestId('lockout-warning')).toHaveCount(0);
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  await locked.row.getByRole('button', { name: `Restore ${locked.name}` }).click();
  await expect(dialog.getByTestId('restore-admins')).toContainText(`${was} (E2E Admin)`);
  await expect(dialog.getByTestId('restore-admins')).not.toContainText('(you)');
  const warning = dialog.getByRole('alert').filter({ hasText: 'You will be locked out' });
  await expect(warning).toContainText(`You (${admin.username}) are not an administrator in this backup.`);
  await expect(warning).toContainText('signed out and unable to sign in');
  await expect(warning.locator('code')).toHaveText(
    `lms-admin user grant-admin --username ${admin.username} --password-stdin`,
  );
  await expect(dialog.getByText(`No longer able to sign in: ${admin.username}`)).toBeVisible();

  // As an administrator sees it, wide and on a phone.
  for (const [width, height] of [
    [1440, 900],
    [390, 844],
  ]) {
    await page.setViewportSize({ width, height });
    await expect(warning).toBeInViewport({ ratio: 0.2 });
    const box = await dialog.boundingBox();
    expect(box!.x + box!.width, `dialog at ${width} px`).toBeLessThanOrEqual(width);
    await page.screenshot({ path: testInfo.outputPath(`restore-lockout-${width}.png`), animations: 'disabled' });
  }
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  for (const { row } of [locked, kept]) {
    const id = await row.getAttribute('data-backup-id');
    expect((await page.request.delete(`/api/admin/backup/${id}`)).status()).toBe(204);
  }
});

test('restore brings the old data back, signs everyone out, and undo returns the rest', async ({
  browser,
  page,
  consoleErrors,
}) => {
  test.setTimeout(180_000);
  // The console's status requests are refused once the restore ends every
  // session (401), and may meet the moment of the switch itself, when the
  // LMS database takes no connections (503, "try again in a moment").
  consoleErrors.expect(/status of 401/);
  consoleErrors.expect(/status of 503/);
  const { row, name } = await createBackup(page, `restore ${Date.now()}`);
  const backedUp = await tableCounts();

  await lmsSql(`INSERT INTO courses (code, title) VALUES ('E2E-${Date.now()}', 'written after the backup')`);
  await lmsSql('DELETE FROM activity_events WHERE id % 3 = 0');
  const changed = await tableCounts();
  expect(changed).not.toEqual(backedUp);

  // Another administrator's console, on the other server, watches.
  const second = process.env.E2E_SECOND_URL;
  if (!second) throw new Error('E2E_SECOND_URL is not set: run the suite through scripts/test.sh');
  const watcher = await browser.newContext({ baseURL: second });
  const watching = await watcher.newPage();
  await openConsole(watching);

  await row.getByRole('button', { name: `Restore ${name}` }).click();
  const dialog = page.getByRole('dialog', { name: 'Restore this backup?' });
  await dialog.getByRole('checkbox', { name: 'I understand this will replace all current data' }).check();
  await dialog.getByLabel(/Type the backup's name/).fill(name);
  await dialog.getByRole('button', { name: 'Restore', exact: true }).click();

  // The other console's running panel names the backup and who restores it.
  const panel = watching.getByRole('region', { name: 'Running operation' });
  await expect(panel).toContainText(`Restore of ${name} in progress`, { timeout: 30_000 });
  await expect(panel).toContainText('e2e-admin');

  // Everyone is signed out; the sign-in page says what happened.
  await expect(page).toHaveURL(/\/login\?after=restore/, { timeout: 120_000 });
  await expect(page.getByRole('status')).toContainText(`The database was restored from ${name}`);
  // So does the other administrator's: which backup, by whom, and when.
  await expect(watching).toHaveURL(/\/login\?after=restore/, { timeout: 30_000 });
  const told = watching.getByRole('status');
  await expect(told).toContainText(`The database was restored from ${name} by e2e-admin.`);
  await expect(told.locator('time')).toBeVisible();
  await expect(told).toContainText('Everyone was signed out');
  await watcher.close();
  expect(await tableCounts()).toEqual(backedUp);

  await openConsole(page);
  const overview = page.getByRole('table', { name: 'Database overview' });
  for (const [table, rows] of backedUp) {
    const line = overview.getByRole('row').filter({ has: page.getByRole('cell', { name: table, exact: true }) });
    await expect(line.getByRole('cell').nth(1)).toHaveText(Number(rows).toLocaleString('en-US'));
  }

  // Undo, with its own confirmation.
  await page.getByRole('button', { name: 'Undo last restore' }).click();
  const undo = page.getByRole('dialog', { name: 'Undo the last restore?' });
  // It says which restore it undoes: the backup, who, and when.
  const undone = undo.getByTestId('undone-restore');
  await expect(undone).toContainText('Undoes the restore of');
  await expect(undone.locator('.filename')).toHaveText(name);
  await expect(undone).toContainText(/e2e-admin|E2E Admin/);
  await expect(undone.locator('.local-time .relative')).toHaveText(/just now|min ago/);
  await expectAccessible(page, 'the undo dialog');
  await page.setViewportSize({ width: 390, height: 844 });
  await expectAccessible(page, 'the undo dialog on a phone');
  await page.setViewportSize({ width: 1280, height: 720 });
  const go = undo.getByRole('button', { name: 'Undo restore' });
  await expect(go).toBeDisabled();
  await undo.getByRole('checkbox').check();
  await go.click();
  await expect(page).toHaveURL(/\/login\?after=undo/, { timeout: 120_000 });
  await expect(page.getByRole('status')).toContainText(new RegExp(`The (last restore|restore of ${name}) was undone`));
  expect(await tableCounts()).toEqual(changed);
});

test('while another server holds the lock, the console says who and the API answers 409', async ({ page }) => {
  await controlSql(
    `INSERT INTO operation_lock (id, holder_instance, operation_type, locked_by_name, locked_at, heartbeat_at)
     VALUES (1, 'another-host:4242:e2e', 'restore', 'alice', now(), now())`,
  );
  try {
    const reason = page.getByTestId('busy-reason');
    await expect(reason).toContainText('A restore started by alice at');
    await expect(page.getByRole('button', { name: 'Create backup' })).toBeDisabled();
    await expect(page.getByRole('button', { name: 'Upload backup' })).toBeDisabled();
    const res = await page.request.post('/api/admin/backup/create', { data: {} });
    expect(res.status()).toBe(409);
    expect((await res.json()).error.message).toContain('alice');
  } finally {
    await controlSql("DELETE FROM operation_lock WHERE holder_instance = 'another-host:4242:e2e'");
  }
  await expect(page.getByRole('button', { name: 'Create backup' })).toBeEnabled();
});

test('a large backup shows a moving progress bar, a second browser follows it live, and the console stays usable', async ({
  page,
  browser,
}) => {
  test.setTimeout(180_000);
  const size = await lmsSql('SELECT pg_database_size(current_database()) AS bytes');
  expect(Number(size.rows[0].bytes)).toBeGreaterThanOrEqual(100 * 1024 * 1024);
  const { name: earlier } = await createBackup(page, `earlier ${Date.now()}`);

  // Backups have become fast enough that the demo database is dumped in
  // about the time the console polls twice: a table of random bytes (which
  // gzip cannot shrink) makes this one backup last several polls, whatever
  // the machine's speed, and goes again with the backup at the end.
  await lmsSql(
    `CREATE TABLE e2e_ballast AS
       SELECT g AS id,
              (SELECT decode(string_agg(md5(g || ':' || s || random()), ''), 'hex') FROM generate_series(1, 256) AS s) AS noise
         FROM generate_series(1, 40000) g`,
  );
  let ballastBackup: string | null = null;
  try {
    await followLargeBackup(page, browser, earlier, (id) => (ballastBackup = id));
  } finally {
    await lmsSql('DROP TABLE IF EXISTS e2e_ballast');
    if (ballastBackup) expect((await page.request.delete(`/api/admin/backup/${ballastBackup}`)).status()).toBe(204);
  }
});

async function followLargeBackup(page: Page, browser: Browser, earlier: string, made: (id: string) => void) {
  // A second administrator's browser, open before the backup starts.
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await openConsole(otherPage);

  await page.getByRole('button', { name: 'Create backup' }).click();
  await page.getByRole('dialog', { name: 'Create a backup' }).getByRole('button', { name: 'Start backup' }).click();

  const panel = page.getByRole('region', { name: 'Running operation' });
  await expect(panel).toBeVisible();
  const otherPanel = otherPage.getByRole('region', { name: 'Running operation' });

  // Progress as both browsers see it, sampled from the start until the job
  // ends, while the checks below go on.
  const seen = new Set<string>();
  const seenByOther = new Set<string>();
  const sample = async (target: typeof panel, into: Set<string>) => {
    const bar = target.getByRole('progressbar');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const value = await bar.getAttribute('aria-valuenow', { timeout: 1_000 }).catch(() => null);
      if (value) into.add(value);
      // A read that timed out on a machine busy with the backup is not the
      // end: the panel going away is.
      else if (into.size > 0 && (await target.isHidden())) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const sampling = Promise.all([sample(panel, seen), sample(otherPanel, seenByOther)]);

  await expect(panel).toContainText('Backup in progress — started by e2e-admin');
  await expect(otherPanel).toContainText('Backup in progress — started by e2e-admin');
  await expect(otherPage.getByRole('button', { name: 'Create backup' })).toBeDisabled();

  // A restore cannot start meanwhile: the button says why, the API says 409.
  const earlierRow = backupTable(page).getByRole('row').filter({ hasText: earlier });
  await expect(earlierRow.getByRole('button', { name: `Restore ${earlier}` })).toBeDisabled();
  const id = await earlierRow.getAttribute('data-backup-id');
  const refused = await page.request.post(`/api/admin/backup/restore/${id}`, { data: { confirm: true } });
  expect(refused.status()).toBe(409);

  // The console stays usable: details open, the list reloads.
  await earlierRow.getByRole('button', { name: `Details of ${earlier}` }).click();
  await expect(page.getByRole('dialog', { name: earlier }).getByRole('table')).toBeVisible();
  await page.keyboard.press('Escape');

  await sampling;
  expect(seen.size, `progress values seen: ${[...seen]}`).toBeGreaterThan(1);
  expect(seenByOther.size, `progress values seen by the other browser: ${[...seenByOther]}`).toBeGreaterThan(1);
  const done = page.getByText(/^backup_\d{8}_\d{6}(_\d+)?\.dump is complete and verified\./).last();
  await expect(done).toBeVisible();
  const file = (await done.textContent())!.split(' ')[0];
  made((await backupTable(page).getByRole('row').filter({ hasText: file }).getAttribute('data-backup-id'))!);
  await expect(otherPage.getByRole('button', { name: 'Create backup' })).toBeEnabled();
  await other.close();
}

test('an upload that is not an archive is refused with what it is', async ({ page, consoleErrors }) => {
  consoleErrors.expect(/status of 422/);
  await page.getByRole('button', { name: 'Upload backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Upload a backup' });
  await dialog.locator('input[type=file]').setInputFiles({
    name: 'export.sql',
    mimeType: 'application/sql',
    buffer: Buffer.from('--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n'),
  });
  await expect(dialog.getByRole('alert')).toContainText('plain SQL');
  const files = await (await page.request.get('/api/admin/backup/list?limit=200')).json();
  expect(files.backups.filter((b: { kind: string }) => b.kind === 'uploaded')).toHaveLength(0);

  await dialog.locator('input[type=file]').setInputFiles({
    name: 'empty.dump',
    mimeType: 'application/octet-stream',
    buffer: Buffer.alloc(0),
  });
  await expect(dialog.getByRole('alert')).toContainText('is empty');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toBeHidden();
});

test('a file over the size cap is refused in the browser before anything is sent', async ({ page }, testInfo) => {
  const summary = await (
    await page.request.post('/api/fn/storage_summary', { data: {}, headers: { 'content-type': 'application/json' } })
  ).json();
  const cap = Number(summary.max_backup_size);
  const big = testInfo.outputPath('too-big.dump');
  // Sparse: the size is real, the disk blocks are not.
  const handle = await open(big, 'w');
  await handle.truncate(cap + 1);
  await handle.close();
  const uploads: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/admin/backup/upload')) uploads.push(r.url());
  });
  await page.getByRole('button', { name: 'Upload backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Upload a backup' });
  await expect(dialog).toContainText(/Up to \d/);
  await dialog.locator('input[type=file]').setInputFiles(big);
  await expect(dialog.getByRole('alert')).toContainText('larger than the largest archive this server accepts');
  expect(uploads, 'nothing was sent').toEqual([]);
  await page.keyboard.press('Escape');
});

test('a valid archive uploads and becomes restorable; a corrupted one or a copy of a listed backup is refused', async ({
  page,
  consoleErrors,
}, testInfo) => {
  consoleErrors.expect(/status of 422/);
  consoleErrors.expect(/status of 409/);
  test.setTimeout(120_000);
  const { row, name } = await createBackup(page, `source ${Date.now()}`);
  const id = await row.getAttribute('data-backup-id');
  const archive = await (await page.request.get(`/api/admin/backup/download/${id}`)).body();
  const before = await tableCounts();

  // One flipped byte in the middle of the data.
  const corrupted = Buffer.from(archive);
  corrupted[Math.floor(corrupted.length / 2)] ^= 0x55;
  await page.getByRole('button', { name: 'Upload backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Upload a backup' });
  const corruptedPath = testInfo.outputPath('corrupted.dump');
  await writeFile(corruptedPath, corrupted);
  await dialog.locator('input[type=file]').setInputFiles(corruptedPath);
  await expect(dialog.getByRole('alert')).toContainText(/damaged|cannot be read|truncated/, { timeout: 60_000 });
  expect(await tableCounts()).toEqual(before);

  // A byte-identical copy of a listed backup is not a second backup.
  const copyPath = testInfo.outputPath(`copy-of-${name}`);
  await writeFile(copyPath, archive);
  await dialog.locator('input[type=file]').setInputFiles(copyPath);
  await expect(dialog.getByRole('alert')).toContainText(`already in the catalog as ${name}`, { timeout: 60_000 });

  // Once the backup is gone from the list, its archive (kept elsewhere) uploads.
  expect((await page.request.delete(`/api/admin/backup/${id}`)).status()).toBe(204);
  await dialog.locator('input[type=file]').setInputFiles(copyPath);
  await expect(dialog).toBeHidden({ timeout: 60_000 });
  const uploaded = backupTable(page).getByRole('row').filter({ hasText: 'Uploaded' }).first();
  await expect(uploaded.getByText('completed', { exact: true })).toBeVisible();
  await expect(uploaded.getByRole('button', { name: /^Restore upload_/ })).toBeEnabled();
  const sha = await uploaded.locator('.checksum').getAttribute('data-sha256');
  expect(sha).toBe(createHash('sha256').update(archive).digest('hex'));
});
