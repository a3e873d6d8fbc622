import { type Locator, type Page } from '@playwright/test';

import { backupTable, createBackup, expect, openConsole, test, waitUntilIdle } from './helpers';

// The console's dialogs: each opens clean, says what it acts on, looks as
// dangerous as it is, and hands keyboard focus back when it closes.

test.beforeEach(async ({ page }) => {
  await openConsole(page);
  await waitUntilIdle(page.request);
});

const UNDERSTOOD = 'I understand this will replace all current data';

function restoreDialog(page: Page) {
  return page.getByRole('dialog', { name: 'Restore this backup?' });
}

function deleteDialog(page: Page) {
  return page.getByRole('dialog', { name: 'Delete this backup?' });
}

/** The element that has keyboard focus, as a short description. */
async function focused(page: Page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return el ? `${el.tagName} ${el.getAttribute('aria-label') ?? el.textContent?.trim() ?? ''}` : 'none';
  });
}

test('the restore checkbox starts unticked on every opening, as drawn and as read', async ({ page }) => {
  const { row, name } = await createBackup(page, `clean ${Date.now()}`);
  const dialog = restoreDialog(page);
  const checkbox = dialog.getByRole('checkbox', { name: UNDERSTOOD });
  const typed = dialog.getByLabel(/Type the backup's name/);
  const go = dialog.getByRole('button', { name: 'Restore', exact: true });

  for (const close of ['Escape', 'Cancel']) {
    await row.getByRole('button', { name: `Restore ${name}` }).click();
    await checkbox.check();
    await typed.fill(name);
    await expect(go).toBeEnabled();
    if (close === 'Escape') await page.keyboard.press('Escape');
    else await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();

    await row.getByRole('button', { name: `Restore ${name}` }).click();
    await expect(checkbox).not.toBeChecked();
    // Drawn as the input holds it: a native box draws :checked.
    await expect(dialog.locator('input[type=checkbox]:checked')).toHaveCount(0);
    await expect(typed).toHaveValue('');
    // One click ticks it, as drawn.
    await checkbox.click();
    await expect(checkbox).toBeChecked();
    await typed.fill(name);
    await expect(go).toBeEnabled();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();
  }
});

test('the restore name field looks empty when it is, and says when the name does not match', async ({ page }) => {
  const { row, name } = await createBackup(page, `typed ${Date.now()}`);
  await row.getByRole('button', { name: `Restore ${name}` }).click();
  const dialog = restoreDialog(page);
  const typed = dialog.getByLabel(/Type the backup's name/);
  expect(await typed.getAttribute('placeholder')).toBeFalsy();

  await typed.fill('backup_1999');
  await expect(dialog.getByText('Does not match the backup\'s name.')).toBeVisible();
  await typed.fill(name.slice(0, 10));
  await expect(dialog.getByText('Does not match the backup\'s name.')).toHaveCount(0);
  // Leaving the field with only part of the name typed.
  await typed.blur();
  await expect(dialog.getByText('Does not match the backup\'s name.')).toBeVisible();
  await typed.fill(name);
  await typed.blur();
  await expect(dialog.getByText('Does not match the backup\'s name.')).toHaveCount(0);
  await page.keyboard.press('Escape');
});

async function background(button: Locator) {
  return button.evaluate((el) => getComputedStyle(el).backgroundColor);
}

test('the final Restore and Delete buttons look dangerous, unlike Create', async ({ page }) => {
  const { row, name } = await createBackup(page, `danger ${Date.now()}`);
  const create = await background(page.getByRole('button', { name: 'Create backup' }));

  await row.getByRole('button', { name: `Restore ${name}` }).click();
  const restore = restoreDialog(page);
  await restore.getByRole('checkbox', { name: UNDERSTOOD }).check();
  await restore.getByLabel(/Type the backup's name/).fill(name);
  const go = restore.getByRole('button', { name: 'Restore', exact: true });
  await expect(go).toBeEnabled();
  // Read once the button's colour transition from disabled has ended.
  await expect.poll(() => background(go)).toBe('rgb(177, 14, 28)');
  expect(create).not.toBe('rgb(177, 14, 28)');
  await restore.getByRole('button', { name: 'Cancel' }).click();

  await row.getByRole('button', { name: `Delete ${name}` }).click();
  const del = deleteDialog(page);
  await expect.poll(() => background(del.getByRole('button', { name: 'Delete backup' }))).toBe('rgb(177, 14, 28)');
  await del.getByRole('button', { name: 'Cancel' }).click();
});

test('the delete dialog shows what is deleted and warns about the newest verified backup', async ({ page }) => {
  const older = await createBackup(page, `older ${Date.now()}`);
  const notes = `newest ${Date.now()}`;
  const newer = await createBackup(page, notes);

  await newer.row.getByRole('button', { name: `Delete ${newer.name}` }).click();
  const dialog = deleteDialog(page);
  const facts = dialog.getByTestId('delete-facts');
  await expect(facts).toContainText(newer.name);
  await expect(facts).toContainText(notes);
  await expect(facts).toContainText('e2e-admin');
  await expect(facts).toContainText(/\d+(\.\d+)? (B|KB|MB|GB)/);
  // The time in the viewer's zone, as the list shows it.
  const listed = (await newer.row.locator('.local-time .absolute').textContent())?.trim() ?? '';
  expect(listed).not.toBe('');
  await expect(facts.locator('.local-time .absolute')).toHaveText(listed);
  await expect(dialog.getByTestId('newest-warning')).toContainText('newest verified backup');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();

  await older.row.getByRole('button', { name: `Delete ${older.name}` }).click();
  await expect(dialog.getByTestId('delete-facts')).toContainText(older.name);
  await expect(dialog.getByTestId('newest-warning')).toHaveCount(0);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
});

test('closing a dialog gives focus back to the control that opened it, without scrolling', async ({ page }) => {
  const { row, name } = await createBackup(page, `focus ${Date.now()}`);
  const openers: [Locator, Locator, 'Escape' | 'Cancel' | 'Close'][] = [
    [row.getByRole('button', { name: `Restore ${name}` }), restoreDialog(page), 'Escape'],
    [row.getByRole('button', { name: `Restore ${name}` }), restoreDialog(page), 'Cancel'],
    [row.getByRole('button', { name: `Delete ${name}` }), deleteDialog(page), 'Escape'],
    [row.getByRole('button', { name: `Delete ${name}` }), deleteDialog(page), 'Cancel'],
    [row.getByRole('button', { name: `Details of ${name}` }), page.getByRole('dialog', { name }), 'Close'],
    [page.getByRole('button', { name: 'Create backup' }), page.getByRole('dialog', { name: 'Create a backup' }), 'Escape'],
    [page.getByRole('button', { name: 'Upload backup' }), page.getByRole('dialog', { name: 'Upload a backup' }), 'Close'],
  ];
  for (const [opener, dialog, close] of openers) {
    await opener.scrollIntoViewIfNeeded();
    const label = (await opener.getAttribute('aria-label')) ?? (await opener.textContent())?.trim() ?? '';
    await opener.click();
    await expect(dialog).toBeVisible();
    const scrolled = await page.evaluate(() => window.scrollY);
    if (close === 'Escape') await page.keyboard.press('Escape');
    else await dialog.getByRole('button', { name: close, exact: true }).click();
    await expect(dialog).toBeHidden();
    await expect(opener, `focus after closing with ${close} (${label})`).toBeFocused();
    expect(await page.evaluate(() => window.scrollY), `no scroll after ${label}`).toBe(scrolled);
  }
});

test('table headings are not keyboard stops, and every stop shows a focus ring', async ({ page }) => {
  await createBackup(page, `tabs ${Date.now()}`);
  await expect(page.locator('th button, th [tabindex]')).toHaveCount(0);

  await page.locator('body').click({ position: { x: 1, y: 1 } });
  const seen: string[] = [];
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const stop = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el || el === document.body) return null;
      const ringOf = (e: Element) => {
        const s = getComputedStyle(e);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
      };
      // A thaw input's ring is drawn around its frame.
      const frame = el.closest('.thaw-input, .thaw-textarea');
      return {
        what: `${el.tagName} ${el.getAttribute('aria-label') ?? el.textContent?.trim().slice(0, 30) ?? ''}`,
        inHeading: !!el.closest('th'),
        ring: frame ? ringOf(frame) : ringOf(el),
      };
    });
    if (!stop) break;
    seen.push(stop.what);
    expect(stop.inHeading, `${stop.what} is inside a table heading`).toBe(false);
    expect(stop.ring, `${stop.what} shows a focus ring`).toBe(true);
  }
  expect(seen.length).toBeGreaterThan(5);
});

test('the upload dialog has a styled file button and room between the drop zone and an error', async ({ page }) => {
  await page.getByRole('button', { name: 'Upload backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Upload a backup' });
  const choose = dialog.getByRole('button', { name: 'Choose a file…' });
  await expect(choose).toHaveClass(/thaw-button/);
  await dialog.locator('input[type=file]').setInputFiles({
    name: 'empty.dump',
    mimeType: 'application/octet-stream',
    buffer: Buffer.alloc(0),
  });
  const alert = dialog.getByRole('alert');
  await expect(alert).toContainText('is empty');
  const zone = await dialog.locator('.thaw-upload').boundingBox();
  const box = await alert.boundingBox();
  expect(zone && box).toBeTruthy();
  expect(box!.y - (zone!.y + zone!.height)).toBeGreaterThanOrEqual(8);

  // Closed and opened again: no error left over.
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toBeHidden();
  await page.getByRole('button', { name: 'Upload backup' }).click();
  await expect(dialog).toBeVisible();
  await expect(dialog.getByRole('alert')).toHaveCount(0);
  await page.keyboard.press('Escape');
});

test('the keyboard reaches the dialog from the row and back', async ({ page }) => {
  const { row, name } = await createBackup(page, `keys ${Date.now()}`);
  await row.getByRole('button', { name: `Details of ${name}` }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name });
  await expect(dialog).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  expect(await focused(page)).toContain(`Details of ${name}`);
  await expect(backupTable(page)).toBeVisible();
});

test('details closed before they arrive, or switched to another backup, leave no error behind', async ({ page }) => {
  // Details drawn after their dialog moved on once ran the pin control's
  // effects under a disposed owner: the page panicked.
  const first = await createBackup(page, `details race one ${Date.now()}`);
  const second = await createBackup(page, `details race two ${Date.now()}`);
  for (let i = 0; i < 8; i++) {
    for (const b of [first, second]) {
      await b.row.getByRole('button', { name: `Details of ${b.name}` }).click();
      await page.keyboard.press('Escape');
    }
  }
  // Still alive: a last opening shows its pin control and closes cleanly.
  await second.row.getByRole('button', { name: `Details of ${second.name}` }).click();
  const details = page.getByRole('dialog', { name: second.name });
  await expect(details.getByTestId('pin')).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(details).toBeHidden();
});
