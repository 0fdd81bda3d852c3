// Printed codes opened ("scanned") in a phone browser: a table code lands on its table, a store
// pay code on the amount page naming the verified merchant, revoked / unknown / tampered codes
// warn, a rotated code moves to its replacement. Then the consumer's own pay code (18 digits,
// QR and barcode) accepted once by the demo cashier, and the merchant console making a pay code
// and serving the printable PDF sheet. The codes are set up through the JSON API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newDesktop, newPhone, shot } from '../lib/browser.js';

const DEMO_PASSWORD = 'o2o-demo-2026';
const OWNER = 'owner@lotus.demo';
const CASHIER = 'cashier@lotus.demo';
const MERCHANT_NAME = '莲花咖啡 Lotus Coffee';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** A staff member's API token: POST /v1/sessions. */
async function staffToken(email) {
  const res = await api('/v1/sessions', { body: { email, password: DEMO_PASSWORD } });
  assert.equal(res.status, 201, `login ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(res.body?.token, `no token for ${email}: ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** The demo merchant as its owner sees it: token, merchant id, stores (each with its tables). */
async function lotus() {
  const token = await staffToken(OWNER);
  const me = await api('/v1/me', { token });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  const merchantId = me.body.merchant_id;
  assert.match(merchantId ?? '', /^mch_/);
  const stores = await api(`/v1/merchants/${merchantId}/stores`, { token });
  assert.equal(stores.status, 200, JSON.stringify(stores.body));
  assert.ok(stores.body.data.length >= 2, 'the demo merchant has two stores');
  for (const store of stores.body.data) {
    const tables = await api(`/v1/stores/${store.id}/tables`, { token });
    assert.equal(tables.status, 200, JSON.stringify(tables.body));
    store.tables = tables.body.data;
  }
  const withTables = stores.body.data.filter((s) => s.tables.length > 0);
  assert.ok(withTables.length > 0, 'the demo stores have tables');
  return { token, merchantId, stores: stores.body.data, withTables };
}

/** Any element of a list. */
function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

/** Create a printed code (POST /v1/qr-codes) and check its URL: <base>/q/<12-char id>. */
async function createCode(token, body) {
  const res = await api('/v1/qr-codes', { body, token });
  assert.equal(res.status, 201, `create ${body.kind} code: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body.kind, body.kind);
  assert.equal(res.body.status, 'active');
  assertCodeUrl(res.body.url);
  return res.body;
}

/** Every printed code of a store (GET /v1/qr-codes?store_id=, all pages). */
async function storeCodes(token, storeId) {
  const all = [];
  let after = '';
  for (;;) {
    const res = await api(`/v1/qr-codes?store_id=${storeId}&limit=100${after}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    all.push(...res.body.data);
    if (!res.body.has_more || res.body.data.length === 0) return all;
    after = `&starting_after=${res.body.data.at(-1).id}`;
  }
}

function assertCodeUrl(url) {
  assert.match(url ?? '', /^https?:\/\/[^/]+\/q\/[0-9a-z]{12}$/, `code url ${url}`);
  assert.ok(url.startsWith(`${baseUrl}/q/`), `code url ${url} is not under ${baseUrl}`);
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const text = async (locator) => (await locator.innerText()).trim();

/** Open a table code and check it lands on that table of that store. */
async function expectTableLanding(page, url, { store, table }) {
  const res = await page.goto(url);
  assert.equal(res?.status(), 200, `opening ${url}`);
  const landing = page.locator('[data-test=landing]');
  await landing.waitFor();
  assert.equal(await landing.getAttribute('data-kind'), 'table');
  assert.match(await text(page.locator('[data-test=table-label]')), new RegExp(`(^|\\s)${escapeRe(table.label)}$`));
  assert.equal(await text(page.locator('[data-test=store-name]')), store.name);
  assert.equal(await text(page.locator('[data-test=merchant-name]')), MERCHANT_NAME);
  assert.ok(await page.locator('[data-test=merchant-verified]').isVisible(), 'the verified badge is not visible');
  assert.equal(await page.locator('[data-test=merchant-unverified]').count(), 0);
}

/** Open a code that must not be trusted: 404 and the warning page, revoked or unknown. */
async function expectWarning(page, url, which) {
  const res = await page.goto(url);
  assert.equal(res?.status(), 404, `opening ${url}`);
  await page.locator('[data-test=qr-warning]').waitFor();
  assert.ok(await page.locator(`[data-test=qr-${which}]`).isVisible(), `qr-${which} is not visible for ${url}`);
  const other = which === 'revoked' ? 'unknown' : 'revoked';
  assert.equal(await page.locator(`[data-test=qr-${other}]`).count(), 0, `qr-${other} shown for ${url}`);
  assert.equal(await page.locator('[data-test=landing]').count(), 0, 'a landing next to the warning');
  assert.equal(await page.locator('[data-test=pay-form]').count(), 0, 'a pay form on the warning page');
}

/** A mainland mobile number nobody used yet (codes are rate-limited per phone). */
function freshPhone() {
  const digits = String(Math.floor(Math.random() * 1e8)).padStart(8, '0');
  return `137${digits}`;
}

/** The newest one-time code the dev outbox holds for a phone. */
async function latestSmsCode(phone) {
  const res = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${phone}`)}`);
  assert.equal(res.status, 200, `dev outbox answered ${res.status}: ${JSON.stringify(res.body)}`);
  assert.ok(Array.isArray(res.body?.data) && res.body.data.length > 0, `no SMS for +86${phone}`);
  const { code } = res.body.data[0];
  assert.match(code ?? '', /^\d{6}$/, `outbox code ${code}`);
  return code;
}

test('a table code opens that table of the store, naming the verified merchant', { timeout: 60_000 }, async () => {
  const { token, withTables } = await lotus();
  const store = pick(withTables);
  const table = pick(store.tables);
  const code = await createCode(token, { kind: 'table', store_id: store.id, table_id: table.id });
  assert.equal(code.store_id, store.id);
  assert.equal(code.table_id, table.id);

  const context = await newPhone(browser);
  try {
    const page = await context.newPage();
    await expectTableLanding(page, code.url, { store, table });
    assert.equal(await page.locator('[data-test=pay-form]').count(), 0, 'a table code offers a pay form');
    await shot(page, 'codes-1-table-landing');

    // A scan starts a guest session, and the table page leads to the store.
    const cookies = await context.cookies(baseUrl);
    assert.ok(cookies.some((c) => c.name === 'o2o_session' && c.value), 'opening a code starts a guest session');
    await clickAndWait(page, '[data-test=landing] [data-test=store-link]');
    assert.equal(new URL(page.url()).pathname, `/stores/${store.id}`);
    await page.locator('[data-test=store]').waitFor();
    await shot(page, 'codes-1-table-store');
  } finally {
    await context.close();
  }
});

test('a store pay code opens the amount page naming the merchant', { timeout: 60_000 }, async () => {
  const { token, stores } = await lotus();
  const store = pick(stores);
  const code = await createCode(token, { kind: 'store_pay', store_id: store.id });
  assert.equal(code.store_id, store.id);

  const context = await newPhone(browser);
  try {
    const page = await context.newPage();
    const res = await page.goto(code.url);
    assert.equal(res?.status(), 200);
    const landing = page.locator('[data-test=landing]');
    await landing.waitFor();
    assert.equal(await landing.getAttribute('data-kind'), 'store_pay');
    assert.match(await text(page.locator('[data-test=merchant-name]')), /Lotus Coffee/);
    assert.ok(await page.locator('[data-test=merchant-verified]').isVisible(), 'the verified badge is not visible');
    assert.equal(await text(page.locator('[data-test=store-name]')), store.name);
    assert.ok(await page.locator('[data-test=pay-form]').isVisible(), 'the pay form is not visible');
    assert.ok(await page.locator('[data-test=amount]').isVisible(), 'the amount input is not visible');
    assert.equal(await page.locator('[data-test=table-label]').count(), 0);
    // Typing an amount works (paying itself is in payments.test.js).
    await page.locator('[data-test=amount]').fill('23.50');
    assert.equal(await page.locator('[data-test=amount]').inputValue(), '23.50');
    await shot(page, 'codes-2-store-pay');
  } finally {
    await context.close();
  }
});

test('revoked, made-up and tampered codes warn; a rotated code moves to its replacement', { timeout: 60_000 }, async () => {
  const { token, withTables } = await lotus();
  const store = pick(withTables);
  const table = pick(store.tables);

  // Revoked.
  const revokedCode = await createCode(token, { kind: 'table', store_id: store.id, table_id: table.id });
  const revoke = await api(`/v1/qr-codes/${revokedCode.id}/revoke`, { method: 'POST', token });
  assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
  assert.equal(revoke.body.status, 'revoked');

  const context = await newPhone(browser);
  try {
    const page = await context.newPage();
    await expectWarning(page, revokedCode.url, 'revoked');
    await shot(page, 'codes-3-revoked');

    // Never issued, and not even a code.
    await expectWarning(page, `${baseUrl}/q/abcdefghjk12`, 'unknown');
    await shot(page, 'codes-3-unknown');
    await expectWarning(page, `${baseUrl}/q/not-a-code`, 'unknown');
    await shot(page, 'codes-3-tampered');

    // Rotation: the old url warns, the new one lands on the same table.
    const old = await createCode(token, { kind: 'table', store_id: store.id, table_id: table.id });
    await expectTableLanding(page, old.url, { store, table });
    await shot(page, 'codes-3-before-rotation');
    const rotated = await api(`/v1/qr-codes/${old.id}/rotate`, { method: 'POST', token });
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    const fresh = rotated.body;
    assertCodeUrl(fresh.url);
    assert.notEqual(fresh.id, old.id);
    assert.notEqual(fresh.url, old.url);
    assert.equal(fresh.kind, 'table');
    assert.equal(fresh.status, 'active');
    assert.equal(fresh.table_id, table.id);
    const oldNow = await api(`/v1/qr-codes/${old.id}`, { token });
    assert.equal(oldNow.status, 200, JSON.stringify(oldNow.body));
    assert.equal(oldNow.body.status, 'revoked');
    assert.equal(oldNow.body.replaced_by, fresh.id);

    await expectWarning(page, old.url, 'revoked');
    await shot(page, 'codes-3-rotated-old');
    await expectTableLanding(page, fresh.url, { store, table });
    await shot(page, 'codes-3-rotated-new');
  } finally {
    await context.close();
  }
});

test('a logged-in consumer shows a pay code; the cashier accepts it once', { timeout: 90_000 }, async () => {
  const context = await newPhone(browser);
  let digits;
  try {
    const page = await context.newPage();

    // Log in with a phone and a one-time code.
    await page.goto(`${baseUrl}/login?next=/me`);
    await page.locator('[data-test=phone]').waitFor();
    await shot(page, 'codes-4-login');
    const phone = freshPhone();
    await page.locator('[data-test=phone]').fill(phone);
    await clickAndWait(page, '[data-test=send-code]');
    await page.locator('[data-test=code]').waitFor();
    assert.equal(await page.locator('[data-test=error]').count(), 0, 'an error was shown after sending the code');
    await shot(page, 'codes-4-code-sent');
    await page.locator('[data-test=code]').fill(await latestSmsCode(phone));
    await clickAndWait(page, '[data-test=login-submit]');

    // Me → pay code.
    if (new URL(page.url()).pathname !== '/me') await page.goto(`${baseUrl}/me`);
    assert.equal(new URL(page.url()).pathname, '/me');
    await page.locator('[data-test=me-phone]').waitFor();
    await shot(page, 'codes-4-me');
    await clickAndWait(page, '[data-test=pay-code-link]');
    assert.equal(new URL(page.url()).pathname, '/me/pay-code');
    await page.locator('[data-test=pay-code-page]').waitFor();

    // Exactly one code block is shown, with its digits, a QR and a barcode.
    const block = page.locator('[data-test=pay-code-page] [data-pay-code]:visible');
    await block.first().waitFor();
    assert.equal(await block.count(), 1, 'one pay code is shown at a time');
    const shown = block.locator('[data-test=pay-code-digits]');
    assert.ok(await shown.isVisible(), 'the pay code digits are not visible');
    digits = (await shown.innerText()).replace(/\s+/g, '');
    assert.match(digits, /^19\d{16}$/, `pay code digits ${digits}`);
    assert.equal(await block.getAttribute('data-pay-code'), digits);
    for (const part of ['qr', 'barcode']) {
      const svg = block.locator(`.${part} svg`);
      assert.equal(await svg.count(), 1, `no ${part} SVG in the shown code`);
      assert.ok(await svg.isVisible(), `the ${part} SVG is not visible`);
      const box = await svg.boundingBox();
      assert.ok(box && box.width > 50 && box.height > 20, `the ${part} is too small: ${JSON.stringify(box)}`);
    }
    await shot(page, 'codes-4-pay-code');
  } finally {
    await context.close();
  }

  // The cashier scans it: accepted once, then code_used.
  const cashier = await staffToken(CASHIER);
  const first = await api('/v1/scan', { body: { payload: digits }, token: cashier });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.kind, 'pay_code');
  assert.equal(first.body.used, true);
  assert.equal(first.body.source, 'wallet');
  const again = await api('/v1/scan', { body: { payload: digits }, token: cashier });
  assert.equal(again.status, 409, JSON.stringify(again.body));
  assert.equal(again.body?.error?.code, 'code_used');
});

test('the merchant console makes a store pay code and serves the printable sheet', { timeout: 90_000 }, async () => {
  const context = await newDesktop(browser, { locale: 'en' });
  try {
    const page = await context.newPage();
    await page.goto(`${baseUrl}/console/login`);
    await page.locator('[data-test=email]').fill(OWNER);
    await page.locator('[data-test=password]').fill(DEMO_PASSWORD);
    await shot(page, 'codes-5-console-login');
    await clickAndWait(page, '[data-test=login-submit]');
    assert.equal(new URL(page.url()).pathname, '/console', `login ended on ${page.url()}`);
    await page.locator('[data-test=console-merchant]').waitFor();
    assert.equal(await text(page.locator('[data-test=console-merchant]')), MERCHANT_NAME);
    assert.ok((await page.locator('[data-test=store-link]').count()) >= 2);
    await shot(page, 'codes-5-dashboard');

    // Set-up through the API: the first store starts without an active store pay code (other
    // tests and earlier runs may have made some), so the one made below is the only one listed.
    const storePath = await page.locator('[data-test=store-link] >> nth=0').getAttribute('href');
    assert.match(storePath ?? '', /^\/console\/stores\/sto_[A-Za-z0-9]+$/);
    const storeId = storePath.split('/').pop();
    const token = await staffToken(OWNER);
    const existing = await storeCodes(token, storeId);
    const oldUrls = new Set(existing.map((c) => c.url));
    for (const c of existing.filter((q) => q.kind === 'store_pay' && q.status === 'active')) {
      const r = await api(`/v1/qr-codes/${c.id}/revoke`, { method: 'POST', token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }

    await clickAndWait(page, '[data-test=store-link] >> nth=0');
    assert.equal(new URL(page.url()).pathname, storePath);
    await page.locator('[data-test=store-title]').waitFor();
    const payItems = page.locator('[data-test=code-item][data-kind=store_pay]');
    assert.equal(await payItems.count(), 0, 'a revoked store pay code is still listed');
    await shot(page, 'codes-5-store');

    await page.locator('[data-test=code-kind]').selectOption('store_pay');
    await clickAndWait(page, '[data-test=code-submit]');
    assert.equal(new URL(page.url()).pathname, storePath);
    assert.equal(await page.locator('[data-test=error]').count(), 0, 'making a code showed an error');
    await payItems.first().waitFor();
    assert.equal(await payItems.count(), 1, 'one store pay code is listed');
    const codeUrl = await text(payItems.locator('[data-test=code-url]'));
    assertCodeUrl(codeUrl);
    assert.ok(!oldUrls.has(codeUrl), `the listed code ${codeUrl} is an old one`);
    assert.equal(await payItems.locator('[data-test=code-url]').getAttribute('href'), codeUrl);
    await shot(page, 'codes-5-store-pay-code');

    // The printable sheet: a PDF, fetched with the console's cookies.
    const href = await page.locator('[data-test=qr-sheet]').getAttribute('href');
    assert.ok(href, 'the qr-sheet link has no href');
    const sheet = await page.request.get(new URL(href, page.url()).href, { timeout: 60_000 });
    const body = await sheet.body();
    assert.equal(sheet.status(), 200, `qr sheet: ${sheet.status()} ${body.toString('utf8', 0, 300)}`);
    assert.match(sheet.headers()['content-type'] ?? '', /^application\/pdf\b/);
    assert.equal(body.subarray(0, 4).toString('latin1'), '%PDF');
    assert.ok(body.length > 1000, `the PDF is only ${body.length} bytes`);

    // The listed code, opened in a phone, is the amount page of that store.
    const phone = await newPhone(browser);
    try {
      const p = await phone.newPage();
      const res = await p.goto(codeUrl);
      assert.equal(res?.status(), 200);
      await p.locator('[data-test=landing][data-kind=store_pay]').waitFor();
      assert.equal(await text(p.locator('[data-test=store-name]')), await text(page.locator('[data-test=store-title]')));
      assert.ok(await p.locator('[data-test=pay-form]').isVisible());
      await shot(p, 'codes-5-store-pay-code-opened');
    } finally {
      await phone.close();
    }
  } finally {
    await context.close();
  }
});
