// A merchant on a desktop (en): sign up, add a store in Shanghai and its tables, add a cashier,
// create an API key (secret shown once) and use it; the store then shows on the public home page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newDesktop, newPhone, shot } from '../lib/browser.js';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const PASSWORD = 'e2e-pass-2026';

function uid() {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** The texts of every element a selector matches, trimmed. */
async function texts(page, selector) {
  return (await page.locator(selector).allInnerTexts()).map((s) => s.trim());
}

test('merchant signs up, adds a store, tables, a cashier and an API key', { timeout: 120_000 }, async () => {
  const id = uid();
  const merchantName = `E2E Noodles ${id}`;
  const email = `owner-${id}@e2e.test`;
  const storeName = `E2E Noodles Xuhui ${id}`;
  // Somewhere in Xuhui, Shanghai, a little different every run.
  const lat = (31.19 + Math.random() * 0.01).toFixed(6);
  const lng = (121.43 + Math.random() * 0.01).toFixed(6);

  const context = await newDesktop(browser, { locale: 'en' });
  let storeId;
  try {
    const page = await context.newPage();

    // Sign up.
    await page.goto(`${baseUrl}/console/signup`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    await page.locator('[data-test=merchant-name]').fill(merchantName);
    await page.locator('[data-test=mode]').selectOption('trading');
    await page.locator('[data-test=email]').fill(email);
    await page.locator('[data-test=password]').fill(PASSWORD);
    await shot(page, 'merchant-console-1-signup');
    await clickAndWait(page, '[data-test=signup-submit]');
    assert.equal(new URL(page.url()).pathname, '/console', `signup ended on ${page.url()}`);
    await page.locator('[data-test=console-merchant]').waitFor();
    assert.equal((await page.locator('[data-test=console-merchant]').innerText()).trim(), merchantName);
    assert.equal(await page.locator('[data-test=store-list] li').count(), 0, 'a new merchant has no stores');
    assert.equal(await page.locator('[data-test=store-timezone]').inputValue(), 'Asia/Shanghai');
    assert.notEqual((await page.locator('[data-test=store-hours]').inputValue()).trim(), '');
    await shot(page, 'merchant-console-2-dashboard');

    // Add a store.
    await page.locator('[data-test=store-name]').fill(storeName);
    await page.locator('[data-test=store-address]').fill('上海市徐汇区漕溪北路 1 号');
    await page.locator('[data-test=store-lat]').fill(lat);
    await page.locator('[data-test=store-lng]').fill(lng);
    await clickAndWait(page, '[data-test=store-submit]');
    const storeUrl = new URL(page.url());
    const m = storeUrl.pathname.match(/^\/console\/stores\/([A-Za-z0-9_]+)$/);
    assert.ok(m, `adding a store ended on ${page.url()}`);
    storeId = m[1];
    await page.locator('[data-test=store-title]').waitFor();
    assert.equal((await page.locator('[data-test=store-title]').innerText()).trim(), storeName);
    assert.equal(await page.locator('[data-test=table-item]').count(), 0);
    await shot(page, 'merchant-console-3-store');

    // Tables A1 and A2.
    for (const label of ['A1', 'A2']) {
      await page.locator('[data-test=table-label]').fill(label);
      await clickAndWait(page, '[data-test=table-submit]');
      assert.equal(new URL(page.url()).pathname, storeUrl.pathname);
      assert.equal(await page.locator('[data-test=error]').count(), 0, `adding table ${label} showed an error`);
    }
    const labels = (await texts(page, '[data-test=table-item]')).map((s) => s.split(/\s+/)[0]);
    assert.deepEqual([...labels].sort(), ['A1', 'A2']);
    await shot(page, 'merchant-console-4-tables');

    // A1 again: an error, and still two tables.
    await page.locator('[data-test=table-label]').fill('A1');
    await clickAndWait(page, '[data-test=table-submit]');
    await page.locator('[data-test=error]').waitFor();
    assert.notEqual((await page.locator('[data-test=error]').innerText()).trim(), '');
    assert.equal(await page.locator('[data-test=table-item]').count(), 2);
    await shot(page, 'merchant-console-5-duplicate-table');

    // The dashboard lists the store.
    await clickAndWait(page, '[data-test=nav-stores]');
    assert.equal(new URL(page.url()).pathname, '/console');
    assert.ok((await texts(page, '[data-test=store-list] li')).some((s) => s.includes(storeName)));
    await shot(page, 'merchant-console-6-dashboard-with-store');

    // A cashier.
    const cashier = `cashier-${id}@e2e.test`;
    await clickAndWait(page, '[data-test=nav-staff]');
    assert.equal(new URL(page.url()).pathname, '/console/staff');
    await page.locator('[data-test=staff-email]').fill(cashier);
    await page.locator('[data-test=staff-password]').fill(PASSWORD);
    await page.locator('[data-test=staff-role]').selectOption('cashier');
    await shot(page, 'merchant-console-7-staff-form');
    await clickAndWait(page, '[data-test=staff-submit]');
    assert.equal(new URL(page.url()).pathname, '/console/staff');
    assert.equal(await page.locator('[data-test=error]').count(), 0, 'adding a cashier showed an error');
    // Each row names its role in the page's language and keeps the API's name in data-role.
    const role = (who, name) =>
      page.locator(`[data-test=staff-list] tr:has-text("${who}") td[data-role=${name}]`).count();
    const staffRows = await texts(page, '[data-test=staff-list] tr');
    assert.equal(await role(cashier, 'cashier'), 1, `cashier not listed: ${JSON.stringify(staffRows)}`);
    assert.equal(await role(email, 'owner'), 1, 'the owner is listed too');
    assert.ok(!staffRows.some((r) => /\b(owner|cashier)\b/.test(r.replace(/\S+@\S+/g, ''))), 'a role shown by its API name');
    await shot(page, 'merchant-console-8-staff');

    // An API key: the secret once.
    const keyName = `POS ${id}`;
    await clickAndWait(page, '[data-test=nav-keys]');
    assert.equal(new URL(page.url()).pathname, '/console/api-keys');
    await shot(page, 'merchant-console-9-keys-empty');
    await page.locator('[data-test=key-name]').fill(keyName);
    await clickAndWait(page, '[data-test=key-submit]');
    await page.locator('[data-test=new-secret]').waitFor();
    const secret = (await page.locator('[data-test=new-secret]').innerText()).trim();
    assert.match(secret, /^sk_\S{16,}$/);
    assert.ok((await texts(page, '[data-test=key-list] tr')).some((r) => r.includes(keyName)));
    await shot(page, 'merchant-console-10-key-created');

    // Loading the page again: the key is listed, the secret is gone.
    await page.goto(`${baseUrl}/console/api-keys`);
    await page.locator('[data-test=key-list]').waitFor();
    assert.equal(await page.locator('[data-test=new-secret]').count(), 0, 'the secret is shown a second time');
    assert.ok(!(await page.content()).includes(secret), 'the secret is still somewhere on the page');
    const keyRows = await texts(page, '[data-test=key-list] tr');
    assert.equal(keyRows.filter((r) => r.includes(keyName)).length, 1, `key rows: ${JSON.stringify(keyRows)}`);
    await shot(page, 'merchant-console-11-keys-reloaded');

    // The secret works as a bearer token.
    const me = await api('/v1/me', { token: secret });
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.kind, 'api_key');
    const bad = await api('/v1/me', { token: `${secret}x` });
    assert.equal(bad.status, 401);
  } finally {
    await context.close();
  }

  // The public home page, near the new store, lists it (in another browser, as nobody).
  const phone = await newPhone(browser, { locale: 'en' });
  try {
    const page = await phone.newPage();
    await page.goto(`${baseUrl}/?near=${lat},${lng}`);
    await page.locator('[data-test=store-item]').first().waitFor();
    const item = page.locator('[data-test=store-item]').filter({ has: page.locator(`a[href="/stores/${storeId}"]`) });
    assert.equal(await item.count(), 1, 'the new store is not on the home page near it');
    assert.match(await item.innerText(), new RegExp(storeName));
    assert.match((await item.locator('[data-test=distance]').innerText()).trim(), /^0(\.0+)?\s*k?m$|^\d+\s*m$/);
    assert.equal(await item.locator('[data-test=open], [data-test=closed]').count(), 1);
    await shot(page, 'merchant-console-12-public-home');
  } finally {
    await phone.close();
  }
});
