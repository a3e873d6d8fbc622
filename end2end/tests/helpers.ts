import { expect, test as base, type APIRequestContext, type Page } from '@playwright/test';
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
 * Deletes every backup through the API, with the session of a signed-in
 * page, so a test can start from an empty catalog.
 */
export async function deleteAllBackups(request: APIRequestContext) {
  const res = await request.get('/api/admin/backup/list?limit=200');
  expect(res.ok()).toBeTruthy();
  const list: { backups: { id: number }[] } = await res.json();
  for (const backup of list.backups) {
    const deleted = await request.delete(`/api/admin/backup/${backup.id}`);
    expect(deleted.status()).toBe(204);
  }
}
