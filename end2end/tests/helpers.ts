import AxeBuilder from '@axe-core/playwright';
import { expect, test as base, type APIRequestContext, type Page } from '@playwright/test';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

export const admin = { username: 'e2e-admin', password: env('E2E_ADMIN_PASSWORD') };
export const instructor = { username: 'e2e-instructor', password: env('E2E_INSTRUCTOR_PASSWORD') };

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite through scripts/test.sh`);
  return value;
}

/**
 * Every test fails if the page logs an error or throws, except for the
 * errors a test declares it expects (a refused sign-in logs its 401).
 */
export const test = base.extend<{ consoleErrors: { expect: (pattern: RegExp) => void } }>({
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      const expected: RegExp[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(msg.text());
      });
      page.on('pageerror', (err) => errors.push(err.message));
      await use({ expect: (pattern) => expected.push(pattern) });
      const unexpected = errors.filter((e) => !expected.some((p) => p.test(e)));
      expect(unexpected, 'console errors').toEqual([]);
    },
    { auto: true },
  ],
});
export { expect };

/** Waits until the WASM bundle has hydrated the page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 15_000 });
}

export async function signIn(page: Page, user: { username: string; password: string }) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Exact row counts straight from PostgreSQL, independent of the app. */
export async function tableCounts(): Promise<Map<string, number>> {
  const client = new Client({ connectionString: env('DATABASE_URL') });
  await client.connect();
  try {
    const tables = await client.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables
       WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'`,
    );
    const counts = new Map<string, number>();
    for (const { name } of tables.rows) {
      const res = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${name}"`);
      counts.set(name, Number(res.rows[0].n));
    }
    return counts;
  } finally {
    await client.end();
  }
}

/**
 * Deletes every backup through the API (unpinning pinned ones first), with
 * the session of a signed-in page, so a test can start from an empty catalog.
 */
export async function deleteAllBackups(request: APIRequestContext) {
  const res = await request.get('/api/admin/backup/list?limit=200');
  expect(res.ok()).toBeTruthy();
  const list: { backups: { id: number; pin: unknown }[] } = await res.json();
  for (const backup of list.backups) {
    if (backup.pin) {
      expect((await request.delete(`/api/admin/backup/${backup.id}/pin`)).ok()).toBeTruthy();
    }
    const deleted = await request.delete(`/api/admin/backup/${backup.id}`);
    expect(deleted.status()).toBe(204);
  }
}

/** Where the administrator's session is kept between tests. */
const ADMIN_STATE = path.join(__dirname, '..', 'test-results', 'admin-session.json');

/**
 * Opens the console as the administrator, reusing the session of earlier
 * tests (each sign-in counts against the login limiter); signs in again when
 * it has ended (a restore signs everyone out).
 */
export async function openConsole(page: Page) {
  if (existsSync(ADMIN_STATE)) {
    const state = JSON.parse(readFileSync(ADMIN_STATE, 'utf8'));
    await page.context().addCookies(state.cookies);
  }
  await page.goto('/admin');
  if (new URL(page.url()).pathname !== '/admin') {
    await signIn(page, admin);
    await expect(page).toHaveURL(/\/admin$/);
    mkdirSync(path.dirname(ADMIN_STATE), { recursive: true });
    await page.context().storageState({ path: ADMIN_STATE });
  }
  await hydrated(page);
}

/** Runs SQL in the LMS database, straight through PostgreSQL. */
export async function lmsSql(sql: string, params: unknown[] = []) {
  return withClient(env('DATABASE_URL'), (c) => c.query(sql, params));
}

/** Runs SQL in the control database (catalog, jobs, lock). */
export async function controlSql(sql: string, params: unknown[] = []) {
  return withClient(`${env('DATABASE_URL')}_control`, (c) => c.query(sql, params));
}

async function withClient<T>(url: string, f: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

/** The backup list's table and one row of it. */
export function backupTable(page: Page) {
  return page.getByRole('table', { name: 'Database Backup & Restore' });
}

/** Creates a backup through the dialog and waits until it is listed as completed. */
export async function createBackup(page: Page, notes: string) {
  await page.getByRole('button', { name: 'Create backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a backup' });
  await dialog.getByLabel('Notes (optional)').fill(notes);
  await dialog.getByRole('button', { name: 'Start backup' }).click();
  await expect(dialog).toBeHidden();
  const row = backupTable(page).getByRole('row').filter({ hasText: notes });
  await expect(row.getByText('completed', { exact: true })).toBeVisible({ timeout: 90_000 });
  const name = (await row.locator('.filename').textContent())?.trim() ?? '';
  expect(name).toMatch(/^backup_\d{8}_\d{6}(_\d+)?\.dump$/);
  return { row, name };
}

/** Waits until no operation holds the lock (the API's view). */
export async function waitUntilIdle(request: APIRequestContext) {
  await expect
    .poll(async () => (await (await request.get('/api/admin/backup/status')).json()).is_locked, {
      timeout: 90_000,
    })
    .toBe(false);
}

/**
 * Scans the page as it is now with axe-core; fails naming each serious or
 * critical rule broken and where.
 */
export async function expectAccessible(page: Page, what: string) {
  // Colours are judged as drawn: a dialog still fading in would be judged
  // at part of its opacity. Wait for every finite animation to end.
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => undefined)),
    ).then(() => undefined),
  );
  // A toast can start to fade in or out while the scan runs (its timeout
  // ends then): an element in a transition's enter or leave step is judged
  // at part of its opacity, so it is left out; it is judged when shown.
  const result = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'])
    .exclude('[class*="-transition-leave-active"]')
    .exclude('[class*="-transition-enter-active"]')
    .analyze();
  const grave = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(grave, `axe on ${what}`).toEqual([]);
  // The scan looked at something: the page's own landmarks were there.
  expect(result.passes.length, `axe checked ${what}`).toBeGreaterThan(0);
}
