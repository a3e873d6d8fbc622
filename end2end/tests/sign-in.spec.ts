import { admin, deleteAllBackups, expect, hydrated, instructor, signIn, tableCounts, test } from './helpers';

test('an administrator signs in and sees the database overview', async ({ page }) => {
  await signIn(page, admin);
  await expect(page).toHaveURL(/\/admin$/);
  await deleteAllBackups(page.request);
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Database overview' })).toBeVisible();
  await expect(page.getByText('E2E Admin')).toBeVisible();

  const overview = page.getByRole('table', { name: 'Database overview' });
  const expected = await tableCounts();
  expect(expected.size).toBeGreaterThanOrEqual(5);
  for (const [name, rows] of expected) {
    const row = overview.getByRole('row').filter({ has: page.getByRole('cell', { name, exact: true }) });
    await expect(row.getByRole('cell').nth(1)).toHaveText(Number(rows).toLocaleString('en-US'));
  }

  await expect(page.getByRole('heading', { name: 'Database Backup & Restore' })).toBeVisible();
  await expect(page.getByText('No backups yet')).toBeVisible();
});

test('a wrong password shows an error and stays on the sign-in page', async ({ page, consoleErrors }) => {
  consoleErrors.expect(/status of 401/);
  await signIn(page, { username: admin.username, password: 'not the password' });
  await expect(page.getByRole('alert')).toContainText('Invalid username or password');
  await expect(page).toHaveURL(/\/login$/);
});

test('an instructor is told the console is for administrators only', async ({ page, consoleErrors }) => {
  // The page is served with 403, which the browser reports.
  consoleErrors.expect(/status of 403/);
  await signIn(page, instructor);
  await expect(page.getByRole('heading', { name: 'Administrators only' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Database overview' })).toHaveCount(0);
});

test('signing out returns to the sign-in page and locks the console', async ({ page }) => {
  await signIn(page, admin);
  await expect(page).toHaveURL(/\/admin$/);
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/admin');
  await expect(page).toHaveURL(/\/login$/);
});

test('strangers are sent to sign in', async ({ page }) => {
  await page.goto('/admin');
  await expect(page).toHaveURL(/\/login$/);
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

test('an empty sign-in form is checked in the page and nothing is sent', async ({ page }) => {
  const sent: string[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST') sent.push(r.url());
  });
  await page.goto('/login');
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('Enter your username.')).toBeVisible();
  await expect(page.getByText('Enter your password.')).toBeVisible();
  await page.getByLabel('Username').fill(admin.username);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('Enter your password.')).toBeVisible();
  expect(sent, 'requests sent').toEqual([]);
  await expect(page).toHaveURL(/\/login$/);
});

test('going Back after signing out says you signed out, not that the session ended', async ({
  page,
  consoleErrors,
}) => {
  // The console page that Back returns to asks for its data and is refused.
  consoleErrors.expect(/status of 401/);
  await signIn(page, admin);
  await expect(page).toHaveURL(/\/admin$/);
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await hydrated(page);
  await expect(page.getByRole('status')).toContainText('You signed out');

  await page.goBack();
  await expect(page).toHaveURL(/\/login/);
  await hydrated(page);
  await expect(page.getByRole('status')).toContainText('You signed out');
  await expect(page.getByText('Your session ended')).toHaveCount(0);

  // Signing in again forgets it: a later end of the session is reported as such.
  await signIn(page, admin);
  await expect(page).toHaveURL(/\/admin$/);
  await hydrated(page);
  await page.context().clearCookies();
  await page.goto('/login?after=expired');
  await hydrated(page);
  await expect(page.getByRole('status')).toContainText('Your session ended');
});
