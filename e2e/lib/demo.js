// Setup the browser tests of ordering share, against the demo data (`o2o serve --demo`): the demo
// café's staff, its Bund store (open round the clock) and its menu, table codes, and phones
// logged in as fresh consumers with money in their wallets.
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, newDesktop, newPhone } from './browser.js';

export const DEMO_PASSWORD = 'o2o-demo-2026';
export const OWNER = 'owner@lotus.demo';
export const CASHIER = 'cashier@lotus.demo';
/** How long to wait for something that arrives live (server-sent events). */
export const LIVE = { timeout: 15_000 };

/** A locator's text, trimmed. */
export const text = async (locator) => (await locator.innerText()).trim();

/** A demo staff member's API session token. */
export async function staffToken(email) {
  const res = await api('/v1/sessions', { body: { email, password: DEMO_PASSWORD } });
  assert.equal(res.status, 201, `login ${email}: ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** The Bund store, and its menu's products by Chinese name (`product('拿铁')`). */
export async function bund() {
  const token = await staffToken(OWNER);
  const me = await api('/v1/me', { token });
  const stores = await api(`/v1/merchants/${me.body.merchant_id}/stores`, { token });
  const store = stores.body.data.find((s) => s.name.includes('外滩'));
  assert.ok(store, `the demo has a Bund store: ${JSON.stringify(stores.body)}`);
  const menu = await api(`/v1/stores/${store.id}/menu`);
  const products = menu.body.sections.flatMap((s) => s.products);
  const product = (zh) => {
    const p = products.find((x) => x.name_zh === zh);
    assert.ok(p, `${zh} is on the menu`);
    return p;
  };
  return { store, product };
}

/** A fresh code for one of the store's tables: { table, url }. */
export async function tableCode(store, tableIndex = 0) {
  const token = await staffToken(OWNER);
  const tables = await api(`/v1/stores/${store.id}/tables`, { token });
  const table = tables.body.data[tableIndex];
  const code = await api('/v1/qr-codes', { token, body: { kind: 'table', store_id: store.id, table_id: table.id } });
  assert.equal(code.status, 201, JSON.stringify(code.body));
  return { table, url: code.body.url };
}

/** A phone number no other test uses (`prefix` keeps test files apart). */
function freshPhone(prefix) {
  return `${prefix}${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

/** A phone logged in as a fresh consumer whose wallet holds `yuan` (topped up on the wallet page). */
export async function consumerPhone(browser, yuan, { prefix = '136' } = {}) {
  const context = await newPhone(browser);
  const page = await context.newPage();
  await page.goto(`${baseUrl}/login?next=/me/wallet`);
  const phone = freshPhone(prefix);
  await page.locator('[data-test=phone]').fill(phone);
  await clickAndWait(page, '[data-test=send-code]');
  const outbox = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${phone}`)}`);
  await page.locator('[data-test=code]').fill(outbox.body.data[0].code);
  await clickAndWait(page, '[data-test=login-submit]');
  assert.equal(new URL(page.url()).pathname, '/me/wallet', `login ended on ${page.url()}`);
  if (yuan) {
    await page.locator('[data-test=top-up-amount]').fill(String(yuan));
    await clickAndWait(page, '[data-test=top-up-submit]');
  }
  return { context, page, phone };
}

/** A staff member's console in a desktop browser. */
export async function staffConsole(browser, email) {
  const context = await newDesktop(browser);
  const page = await context.newPage();
  await page.goto(`${baseUrl}/console/login`);
  await page.locator('[data-test=email]').fill(email);
  await page.locator('[data-test=password]').fill(DEMO_PASSWORD);
  await clickAndWait(page, '[data-test=login-submit]');
  assert.equal(new URL(page.url()).pathname, '/console', `staff login ended on ${page.url()}`);
  return { context, page };
}
