import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import { type Locator, type Page } from '@playwright/test';

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

/** How many lines an element's text takes. */
async function lines(target: Locator) {
  return target.evaluate((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    return tops.size;
  });
}

/** Whether an element's text is cut short with an ellipsis rather than wrapped or clipped bare. */
async function truncatesWithEllipsis(target: Locator) {
  return target.evaluate((el) => {
    const style = getComputedStyle(el);
    return style.textOverflow === 'ellipsis' && style.whiteSpace === 'nowrap' && style.overflow === 'hidden';
  });
}

/** Every action of a row: its download link and buttons. */
function rowActions(row: Locator) {
  return row.locator('.row-actions').locator('a, button');
}

test('names, sizes and dates never break, and long text ends in an ellipsis with the whole in its title', async ({
  page,
}) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  const notes = `a long note about why this backup was taken ${'and what it holds '.repeat(8)}${Date.now()}`;
  const { row, name } = await createBackup(page, notes);
  const filename = row.locator('.filename');
  await expect(filename).toHaveAttribute('title', name);
  expect(await lines(filename), 'the name on one line').toBe(1);
  expect(await lines(row.locator('.size-cell')), 'the size on one line').toBe(1);
  expect(await lines(row.locator('.created-cell .absolute')), 'the date on one line').toBe(1);
  const note = row.locator('.notes .clip');
  expect(await lines(note), 'the notes on one line').toBe(1);
  expect(await truncatesWithEllipsis(note)).toBe(true);
  await expect(note).toHaveAttribute('title', notes);

  // The list uses the width there is: no inner sideways scrolling.
  const scroll = page.locator('.table-scroll').first();
  expect(await scroll.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);

  // Details shows the name and the notes in full.
  await row.getByRole('button', { name: `Details of ${name}` }).click();
  const details = page.getByRole('dialog', { name });
  await expect(details.locator('.manifest-facts .filename')).toHaveText(name);
  await expect(details.locator('.notes-full')).toHaveText(notes);
  await page.keyboard.press('Escape');
});

test('on a phone every action of every backup is on screen without sideways scrolling', async ({ page }) => {
  test.setTimeout(120_000);
  await deleteAllBackups(page.request);
  await createBackup(page, `phone one ${Date.now()}`);
  await createBackup(page, `phone two ${'with a longer note '.repeat(4)}${Date.now()}`);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await openConsole(page);

  const width = await page.evaluate(() => window.innerWidth);
  const scrollWidth = await page.evaluate(() => document.scrollingElement!.scrollWidth);
  expect(scrollWidth, 'the page never scrolls sideways').toBeLessThanOrEqual(width);
  await expect(page.getByRole('navigation', { name: 'Administration' })).toBeVisible();

  const rows = backupTable(page).locator('tbody tr');
  await expect(rows).toHaveCount(2);
  for (const row of await rows.all()) {
    // No fact of a card is drawn over another (a cell's own height once
    // pushed "just now" onto the next label).
    const overlaps = await row.evaluate((tr) => {
      const cells = [...tr.querySelectorAll('td')].map((td) => ({
        label: td.getAttribute('data-label') ?? td.className,
        box: td.getBoundingClientRect(),
        content: [...td.querySelectorAll('*')].map((e) => e.getBoundingClientRect()),
      }));
      const found: string[] = [];
      for (const a of cells)
        for (const b of cells) {
          if (a === b) continue;
          for (const r of a.content) {
            const inside = r.width > 0 && r.height > 0 &&
              r.left < b.box.right - 1 && r.right > b.box.left + 1 &&
              r.top < b.box.bottom - 1 && r.bottom > b.box.top + 1;
            if (inside) found.push(`${a.label} over ${b.label}`);
          }
        }
      return [...new Set(found)];
    });
    expect(overlaps, 'facts of a card drawn over each other').toEqual([]);
    const actions = rowActions(row);
    expect(await actions.count()).toBeGreaterThanOrEqual(3);
    for (const action of await actions.all()) {
      await action.scrollIntoViewIfNeeded();
      await expect(action).toBeInViewport();
      const box = (await action.boundingBox())!;
      const label = (await action.getAttribute('aria-label')) ?? (await action.textContent());
      expect(box.x, `${label} starts on screen`).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, `${label} ends on screen`).toBeLessThanOrEqual(width);
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.y + box.height).toBeLessThanOrEqual(844);
      // A button's label stays on one line.
      expect(box.height, `${label} does not wrap`).toBeLessThan(40);
    }
  }
  expect(await page.evaluate(() => document.scrollingElement!.scrollWidth)).toBeLessThanOrEqual(width);

  // The Details title is cut with an ellipsis, the name whole in its title.
  const first = rows.first();
  const name = (await first.locator('.filename').getAttribute('title'))!;
  await first.getByRole('button', { name: `Details of ${name}` }).click();
  const details = page.getByRole('dialog', { name });
  const title = details.locator('.details-title .clip');
  await expect(title).toHaveAttribute('title', name);
  expect(await truncatesWithEllipsis(title)).toBe(true);
  const titleBox = (await title.boundingBox())!;
  expect(titleBox.x + titleBox.width).toBeLessThanOrEqual(width);
  await page.keyboard.press('Escape');
});

/** Starts a backup through the dialog; returns its name from the toast. */
async function startBackup(page: Page, notes: string) {
  await page.getByRole('button', { name: 'Create backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a backup' });
  await dialog.getByLabel('Notes (optional)').fill(notes);
  await dialog.getByRole('button', { name: 'Start backup' }).click();
  await expect(dialog).toBeHidden();
}

test('a running backup shows first, once, and does not count as a stored backup', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await deleteAllBackups(page.request);
  await page.reload();
  await openConsole(page);
  await startBackup(page, `first ${Date.now()}`);

  const panel = page.getByRole('region', { name: 'Running operation' });
  await expect(panel).toBeVisible();
  // Where the admin looks first: on screen, above the database overview.
  await expect(panel).toBeInViewport({ ratio: 1 });
  const panelBox = (await panel.boundingBox())!;
  const overview = (await page.getByRole('heading', { name: 'Database overview' }).boundingBox())!;
  expect(panelBox.y).toBeLessThan(overview.y);
  await expect(page.getByRole('button', { name: 'Create backup' })).toBeInViewport();
  // Said once, in the panel.
  await expect(panel).toContainText('Backup in progress — started by e2e-admin');
  await expect(page.getByTestId('busy-reason')).toHaveCount(0);
  // The running first backup is not a stored backup yet.
  await expect(page.getByTestId('stored')).toHaveText('0 backups · 0 B');
  await expect(page.getByTestId('last-backup')).toHaveText('none yet');

  // Its outcome names it, where it does not cover the row's actions.
  const toast = page.getByText(/^backup_\d{8}_\d{6}(_\d+)?\.dump is complete and verified\./);
  await expect(toast).toBeVisible({ timeout: 90_000 });
  const row = backupTable(page).locator('tbody tr').first();
  await expect(row.getByText('completed', { exact: true })).toBeVisible();
  const toastBox = (await toast.boundingBox())!;
  for (const action of await rowActions(row).all()) {
    const box = (await action.boundingBox())!;
    const overlaps =
      box.x < toastBox.x + toastBox.width &&
      toastBox.x < box.x + box.width &&
      box.y < toastBox.y + toastBox.height &&
      toastBox.y < box.y + box.height;
    expect(overlaps, `the toast covers ${await action.getAttribute('aria-label')}`).toBe(false);
  }
  await expect(page.getByTestId('stored')).toContainText('1 backup ·');
  await expect(page.getByTestId('last-backup')).toContainText('completed');
});

test('while another server holds the lock the reason is still given', async ({ page }) => {
  await controlSql(
    `INSERT INTO operation_lock (id, holder_instance, operation_type, locked_by_name, locked_at, heartbeat_at)
     VALUES (1, 'another-host:4243:e2e', 'backup', 'carol', now(), now())`,
  );
  try {
    await expect(page.getByTestId('busy-reason')).toContainText('A backup started by carol at');
  } finally {
    await controlSql("DELETE FROM operation_lock WHERE holder_instance = 'another-host:4243:e2e'");
  }
});

test('Refresh shows that it is loading', async ({ page }) => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/api/fn/list_backups', async (route) => {
    await held;
    await route.continue();
  });
  const refresh = page.getByRole('button', { name: 'Refresh' });
  await refresh.click();
  await expect(refresh).toHaveClass(/thaw-button--loading/);
  release();
  await expect(refresh).not.toHaveClass(/thaw-button--loading/);
});

test('a visit fetches no list again when the first status names a job that ended before the page', async ({
  page,
}) => {
  // The newest job ended well before the page is drawn: what the page lists
  // already shows its outcome. (Durations kept: start and end move alike.)
  await controlSql(
    "UPDATE jobs SET created_at = created_at - interval '1 minute', finished_at = finished_at - interval '1 minute' WHERE finished_at IS NOT NULL",
  );
  const fetched: string[] = [];
  page.on('request', (request) => {
    const list = request.url().match(/\/api\/fn\/(list_backups|storage_summary|backup_health|recent_activity)/);
    if (list) fetched.push(list[1]);
  });
  const statusAnswered = () => page.waitForResponse((r) => r.url().includes('/api/fn/operation_status'));
  const first = statusAnswered();
  await page.reload();
  await hydrated(page);
  await first;
  // The status is asked for every second: by the next answer the first one
  // has been taken in, and anything it would reload has been asked for.
  await statusAnswered();
  expect(fetched).toEqual([]);
});

test('row counts are grouped in thousands', async ({ page }) => {
  const table = page.getByRole('table', { name: 'Database overview' });
  const counts = await table.locator('tbody td.num:nth-child(2)').allTextContents();
  const big = counts.filter((c) => Number(c.replace(/,/g, '')) >= 1000);
  expect(big.length, `counts: ${counts}`).toBeGreaterThan(0);
  for (const c of big) expect(c).toMatch(/^\d{1,3}(,\d{3})+$/);
});

/** Pictures of the list at both sizes, kept with the test's output. */
test('screenshots of the list on a desktop and on a phone', async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  await deleteAllBackups(page.request);
  await createBackup(page, 'before the spring term opens');
  const shots: string[] = [];
  for (const [file, width, height] of [
    ['console-desktop.png', 1440, 900],
    ['console-phone.png', 390, 844],
  ] as const) {
    await page.setViewportSize({ width, height });
    await page.reload();
    await openConsole(page);
    const out = testInfo.outputPath(file);
    await page.screenshot({ path: out, fullPage: true, animations: 'disabled' });
    shots.push(out);
  }
  // A backup running: the panel where the admin looks first, at both sizes.
  await startBackup(page, 'nightly check');
  const panel = page.getByRole('region', { name: 'Running operation' });
  await expect(panel.getByRole('progressbar')).toHaveAttribute('aria-valuenow', /^0\.[1-9]/, { timeout: 30_000 });
  await page.mouse.move(0, 0);
  for (const [file, width, height] of [
    ['running-desktop.png', 1440, 900],
    ['running-phone.png', 390, 844],
  ] as const) {
    await page.setViewportSize({ width, height });
    await expect(panel).toBeVisible();
    const out = testInfo.outputPath(file);
    await page.screenshot({ path: out, animations: 'disabled' });
    shots.push(out);
  }
  await waitUntilIdle(page.request);
  if (process.env.UPDATE_SCREENSHOTS) {
    const docs = path.join(__dirname, '..', '..', 'docs', 'screenshots');
    await mkdir(docs, { recursive: true });
    for (const shot of shots) await copyFile(shot, path.join(docs, path.basename(shot)));
  }
});
