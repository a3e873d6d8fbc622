import {
  createBackup,
  expect,
  expectAccessible,
  lmsSql,
  openConsole,
  test,
  waitUntilIdle,
} from './helpers';

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

/** The rows of a course, counted straight in the database. */
async function courseRows(code: string) {
  const res = await lmsSql(
    `SELECT (SELECT count(*) FROM courses WHERE code = $1)::int AS courses,
            (SELECT count(*) FROM lessons l JOIN courses c ON c.id = l.course_id WHERE c.code = $1)::int AS lessons,
            (SELECT count(*) FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE c.code = $1)::int AS enrollments`,
    [code],
  );
  return res.rows[0] as { courses: number; lessons: number; enrollments: number };
}

test('a course deleted since a backup comes back alone, and newer work stays', async ({ page }, testInfo) => {
  test.setTimeout(300_000);
  const stamp = Date.now();
  const code = `REC-${stamp}`;
  const title = `Recovered Course ${stamp}`;
  const newer = `NEW-${stamp}`;
  // A course with 12 lessons and 230 enrollments, then a backup.
  await lmsSql(`INSERT INTO courses (code, title, is_published) VALUES ($1, $2, true)`, [code, title]);
  await lmsSql(
    `INSERT INTO lessons (course_id, position, title)
     SELECT c.id, p, 'Lesson ' || p FROM courses c, generate_series(1, 12) p WHERE c.code = $1`,
    [code],
  );
  await lmsSql(
    `INSERT INTO enrollments (course_id, user_id)
     SELECT c.id, u.id FROM courses c,
            (SELECT id FROM users WHERE role = 'student' ORDER BY id LIMIT 230) u
     WHERE c.code = $1`,
    [code],
  );
  const { row, name } = await createBackup(page, `before the course went ${stamp}`);
  try {
    // Deleted through SQL (with its lessons and enrollments, by cascade),
    // and someone else's work since.
    await lmsSql(`DELETE FROM courses WHERE code = $1`, [code]);
    await lmsSql(`INSERT INTO courses (code, title) VALUES ($1, 'Written after the backup')`, [newer]);
    expect(await courseRows(code)).toEqual({ courses: 0, lessons: 0, enrollments: 0 });

    await row.getByRole('button', { name: `Restore ${name}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore this backup?' });
    await dialog.getByRole('button', { name: 'Preview changes' }).click();
    await expect(dialog).toBeHidden();

    const prepared = page.getByRole('region', { name: `Preview of ${name}` });
    await expect(prepared).toBeVisible({ timeout: 180_000 });
    await expect(prepared.getByTestId('preview-come-back')).toHaveText(
      '1 course, 12 lessons, 230 enrollments would come back.',
    );
    await expect(prepared.getByTestId('preview-lost')).toContainText(/^[\d,]+ rows? would be lost \(.*courses?/);
    await expect(prepared.getByTestId('prepared-database')).toContainText('_prepared_');
    const diff = prepared.getByRole('table', { name: 'Tables that differ from the backup' });
    await expect(diff.getByRole('row').filter({ hasText: 'enrollments' }).getByRole('cell').nth(4)).toHaveText('230');

    // Found by its title, planned, then recovered alone.
    await prepared.getByLabel('Find by course title, username or e-mail').fill(title);
    const matches = prepared.getByTestId('recover-matches').getByRole('listitem');
    // The course first; then what mentions it (its lessons, enrollments).
    await expect(matches.first()).toContainText(`course “${title}” (${code})`);
    const match = matches.filter({ hasText: `course “${title}” (${code})` });
    await expect(match).toHaveCount(1);
    await match.getByRole('button', { name: 'Plan recovery' }).click();
    const plan = prepared.getByTestId('recovery-plan');
    await expect(plan.getByTestId('plan-summary')).toHaveText(
      `Recovering course “${title}” (${code}) [id=${await courseId()}] inserts 1 course, 12 lessons, 230 enrollments.`,
      { timeout: 60_000 },
    );
    await expectAccessible(page, 'a preview with a recovery plan');
    for (const [width, height] of [
      [1440, 900],
      [390, 844],
    ]) {
      await page.setViewportSize({ width, height });
      await prepared.scrollIntoViewIfNeeded();
      await page.screenshot({ path: testInfo.outputPath(`preview-${width}.png`), fullPage: false });
      await plan.scrollIntoViewIfNeeded();
      await page.screenshot({ path: testInfo.outputPath(`recovery-plan-${width}.png`), fullPage: false });
    }
    await page.setViewportSize({ width: 1280, height: 720 });
    const recover = plan.getByRole('button', { name: 'Recover 243 rows' });
    await expect(recover).toBeDisabled();
    await plan.getByLabel('I understand these rows are inserted into the live database').check();
    await recover.click();
    await expect
      .poll(() => courseRows(code), { timeout: 90_000 })
      .toEqual({ courses: 1, lessons: 12, enrollments: 230 });
    await waitUntilIdle(page.request);
    const stillThere = await lmsSql(`SELECT count(*)::int AS n FROM courses WHERE code = $1`, [newer]);
    expect(stillThere.rows[0].n).toBe(1);

    // Listed again in the overview's counts, with the newer course.
    await page.reload();
    const total = (await lmsSql(`SELECT count(*)::int AS n FROM courses`)).rows[0].n as number;
    const overview = page.getByRole('table', { name: 'Database overview' });
    const coursesRow = overview.getByRole('row').filter({ has: page.getByRole('cell', { name: 'courses', exact: true }) });
    await expect(coursesRow).toContainText(total.toLocaleString('en-US'));
    const recoveries = page.getByRole('region', { name: 'Record recoveries' });
    await expect(recoveries.getByTestId('recoveries')).toContainText(
      `course “${title}” (${code})`,
    );
    await expect(recoveries.getByTestId('recoveries')).toContainText('1 course, 12 lessons, 230 enrollments');
  } finally {
    await waitUntilIdle(page.request);
    // The prepared copy of a large database is not left behind.
    await page.request.delete('/api/admin/backup/preview');
    await lmsSql(`DELETE FROM courses WHERE code IN ($1, $2)`, [code, newer]);
  }

  async function courseId() {
    // The id is the backup's, read from the copy's own listing: the row is
    // gone live. The plan names it after the words.
    const res = await page.request.get('/api/admin/backup/preview');
    const preview = await res.json();
    const courses = preview.tables.find((t: { name: string }) => t.name === 'courses');
    const row = courses.recoverable.find((r: { words: string }) => r.words.includes(title));
    return row.key as string;
  }
});
