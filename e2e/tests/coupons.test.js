// Coupons on pages. The owner creates a coupon in the console (满20减3); a consumer finds it in the
// coupon center near the demo café's Bund store and claims it; orders at a table, sends it to the
// kitchen and pays with the coupon the pay form preselects (only the rest leaves the wallet); the
// coupon then shows as used on /me/coupons, and the console shows the template's results.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newDesktop, newPhone, shot } from '../lib/browser.js';

const DEMO_PASSWORD = 'o2o-demo-2026';
const OWNER = 'owner@lotus.demo';
const LIVE = { timeout: 15_000 };

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const text = async (locator) => (await locator.innerText()).trim();

async function ownerToken() {
  const res = await api('/v1/sessions', { body: { email: OWNER, password: DEMO_PASSWORD } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token;
}

/** The Bund store (open round the clock), a fresh code for one of its tables, and its menu. */
async function bund(tableIndex) {
  const token = await ownerToken();
  const me = await api('/v1/me', { token });
  const stores = await api(`/v1/merchants/${me.body.merchant_id}/stores`, { token });
  const store = stores.body.data.find((s) => s.name.includes('外滩'));
  assert.ok(store, 'the demo has a Bund store');
  const tables = await api(`/v1/stores/${store.id}/tables`, { token });
  const table = tables.body.data[tableIndex];
  const code = await api('/v1/qr-codes', { token, body: { kind: 'table', store_id: store.id, table_id: table.id } });
  assert.equal(code.status, 201, JSON.stringify(code.body));
  const menu = await api(`/v1/stores/${store.id}/menu`);
  const products = menu.body.sections.flatMap((s) => s.products);
  return { store, url: code.body.url, product: (zh) => products.find((p) => p.name_zh === zh) };
}

function freshPhone() {
  return `135${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

test('a consumer claims a coupon in the coupon center, pays a table order with it preselected, and sees it used; the console shows its results', { timeout: 180_000 }, async () => {
  const { store, url, product } = await bund(5);
  const latte = product('拿铁');
  assert.ok(latte, '拿铁 is on the menu');
  const name = `满20减3 ${Date.now() % 100000}`;

  // The owner creates the coupon in the console.
  const owner = await newDesktop(browser);
  const phone = await newPhone(browser);
  try {
    const console_ = await owner.newPage();
    await console_.goto(`${baseUrl}/console/login`);
    await console_.locator('[data-test=email]').fill(OWNER);
    await console_.locator('[data-test=password]').fill(DEMO_PASSWORD);
    await clickAndWait(console_, '[data-test=login-submit]');
    await clickAndWait(console_, '[data-test=nav-coupons]');
    assert.equal(new URL(console_.url()).pathname, '/console/coupons');
    await console_.locator('[data-test=coupon-name]').fill(name);
    await console_.locator('[data-test=coupon-kind]').selectOption('amount_off');
    await console_.locator('[data-test=coupon-amount-off]').fill('3');
    await console_.locator('[data-test=coupon-min-spend]').fill('20');
    await console_.locator('[data-test=coupon-stock]').fill('50');
    await console_.locator('[data-test=coupon-limit]').fill('1');
    await console_.locator('[data-test=coupon-valid-days]').fill('7');
    await clickAndWait(console_, '[data-test=coupon-create]');
    await console_.locator('[data-test=notice]').waitFor();
    const created = console_.locator('[data-test=template]', { hasText: name });
    const templateId = await created.getAttribute('data-template');
    assert.match(templateId ?? '', /^cpt_/);
    assert.equal(await text(created.locator('[data-test=stat-issued]')), '0');
    await shot(console_, 'coupons-1-console-created');

    // A consumer logs in (with a funded wallet) and opens the coupon center near the store.
    const page = await phone.newPage();
    await page.goto(`${baseUrl}/login?next=/me/wallet`);
    const number = freshPhone();
    await page.locator('[data-test=phone]').fill(number);
    await clickAndWait(page, '[data-test=send-code]');
    const outbox = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${number}`)}`);
    await page.locator('[data-test=code]').fill(outbox.body.data[0].code);
    await clickAndWait(page, '[data-test=login-submit]');
    await page.locator('[data-test=top-up-amount]').fill('100');
    await clickAndWait(page, '[data-test=top-up-submit]');

    // Without a location the center says where it looks; with one it lists the café's offers.
    assert.equal((await page.goto(`${baseUrl}/coupons`))?.status(), 200);
    await page.locator('[data-test=default-center]').waitFor();
    assert.equal((await page.goto(`${baseUrl}/coupons?near=${store.lat},${store.lng}`))?.status(), 200);
    const offer = page.locator(`[data-test=offer][data-template="${templateId}"]`);
    await offer.waitFor();
    assert.equal(await text(offer.locator('[data-test=offer-rule]')), '满¥20.00减¥3.00');
    // The demo's own coupons are there too.
    assert.ok((await page.locator('[data-test=offer]').count()) >= 2);
    await shot(page, 'coupons-2-center');
    await clickAndWait(page, `[data-test=offer][data-template="${templateId}"] [data-test=claim]`);
    await page.locator('[data-test=notice]').waitFor();
    // Claimed up to the limit: no second claim button, the limit is shown.
    await offer.locator('[data-test=offer-limit]').waitFor();
    assert.equal(await offer.locator('[data-test=claim]').count(), 0);
    await shot(page, 'coupons-3-claimed');

    await clickAndWait(page, '[data-test=my-coupons-link]');
    const mine = page.locator('[data-test=coupons-active] [data-test=coupon]', { hasText: name });
    await mine.waitFor();
    const couponId = await mine.getAttribute('data-coupon');
    assert.match(couponId ?? '', /^cpn_/);

    // At a table: a latte (¥28), sent to the kitchen; the pay form preselects the coupon.
    assert.equal((await page.goto(url))?.status(), 200);
    await page.locator('[data-test=table-order][data-live=yes]').waitFor(LIVE);
    const row = page.locator(`[data-test=menu-item][data-product="${latte.id}"]`);
    await row.locator('[data-test=qty]').fill('1');
    await clickAndWait(page, '[data-test=add-to-order]');
    await clickAndWait(page, '[data-test=place]');
    // The live part has been fetched once its stream opened (so a choice made now stays).
    await page.locator('[data-test=table-order][data-refreshed]').waitFor(LIVE);
    const picker = page.locator('[data-test=coupon-picker]');
    await picker.waitFor();
    const chosen = picker.locator('[data-test=coupon-choice]:checked');
    assert.equal(await chosen.getAttribute('value'), couponId);
    assert.equal(await text(picker.locator('[data-test=coupon-discount]')), '-¥3.00');
    assert.equal(await text(picker.locator('[data-test=coupon-to-pay]')), '¥25.00');
    // Choosing no coupon shows the whole bill; choosing it again shows the discount.
    await picker.locator('[data-test=coupon-none]').check();
    assert.equal(await text(picker.locator('[data-test=coupon-to-pay]')), '¥28.00');
    await picker.locator(`[data-test=coupon-choice][value="${couponId}"]`).check();
    assert.equal(await text(picker.locator('[data-test=coupon-to-pay]')), '¥25.00');
    await shot(page, 'coupons-4-table-pay');
    await clickAndWait(page, '[data-test=pay-all]');
    assert.match(new URL(page.url()).pathname, /^\/me\/orders\/ord_/);
    await page.locator('[data-test=order-discount]').waitFor();
    assert.equal(await text(page.locator('[data-test=order-discount-amount]')), '-¥3.00');
    assert.equal(await text(page.locator('[data-test=order-total]')), '¥25.00');
    await shot(page, 'coupons-5-order-paid');

    // The wallet paid only the rest; the coupon is used.
    await page.goto(`${baseUrl}/me/wallet`);
    assert.equal(await text(page.locator('[data-test=wallet-balance]')), '¥75.00');
    await page.goto(`${baseUrl}/me/coupons`);
    const used = page.locator(`[data-test=coupons-used] [data-test=coupon][data-coupon="${couponId}"]`);
    await used.waitFor();
    assert.equal(await text(used.locator('[data-test=coupon-saved]')), '¥3.00');
    assert.equal(await page.locator(`[data-test=coupons-active] [data-coupon="${couponId}"]`).count(), 0);
    await shot(page, 'coupons-6-mine-used');

    // The console shows what the coupon did.
    await console_.goto(`${baseUrl}/console/coupons`);
    const stats = console_.locator(`[data-test=template][data-template="${templateId}"]`);
    assert.equal(await text(stats.locator('[data-test=stat-issued]')), '1');
    assert.equal(await text(stats.locator('[data-test=stat-used]')), '1');
    assert.equal(await text(stats.locator('[data-test=stat-discount]')), '¥3.00');
    assert.equal(await text(stats.locator('[data-test=stat-sales]')), '¥25.00');
    await shot(console_, 'coupons-7-console-stats');
  } finally {
    await Promise.all([owner.close(), phone.close()]);
  }
});
