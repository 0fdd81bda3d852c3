// Money on pages. A consumer scans the demo store's printed pay code, logs in, tops the wallet up
// from the sandbox bank, pays ¥25.00 and sees the receipt, while the cashier's counter, open in a
// second browser, announces "¥25.00" live. Then the cashier types a consumer's pay code at the
// counter (the consumer's wallet shows the payment) and refunds it from the counter, in part and
// then the rest (the wallet goes back up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newDesktop, newPhone, shot } from '../lib/browser.js';

const DEMO_PASSWORD = 'o2o-demo-2026';
const OWNER = 'owner@lotus.demo';
const CASHIER = 'cashier@lotus.demo';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const text = async (locator) => (await locator.innerText()).trim();

/** A staff member's API token: POST /v1/sessions. */
async function staffToken(email) {
  const res = await api('/v1/sessions', { body: { email, password: DEMO_PASSWORD } });
  assert.equal(res.status, 201, `login ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** A demo store and a fresh store pay code for it (made by the owner through the API). */
async function storeWithPayCode() {
  const token = await staffToken(OWNER);
  const me = await api('/v1/me', { token });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  const stores = await api(`/v1/merchants/${me.body.merchant_id}/stores`, { token });
  assert.equal(stores.status, 200, JSON.stringify(stores.body));
  const store = stores.body.data[0];
  assert.ok(store, 'the demo merchant has a store');
  const code = await api('/v1/qr-codes', { body: { kind: 'store_pay', store_id: store.id }, token });
  assert.ok([200, 201].includes(code.status), `store pay code: ${code.status} ${JSON.stringify(code.body)}`);
  assert.ok(code.body.url.startsWith(`${baseUrl}/q/`), code.body.url);
  return { store, url: code.body.url };
}

/** A mainland mobile number nobody used yet (codes are rate-limited per phone). */
function freshPhone() {
  return `137${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

/** The newest one-time code the dev outbox holds for a phone. */
async function latestSmsCode(phone) {
  const res = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${phone}`)}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const { code } = res.body.data[0];
  assert.match(code ?? '', /^\d{6}$/);
  return code;
}

/** On the login page: a fresh phone, its one-time code, submit (back to `next`). */
async function logInOnLoginPage(page) {
  await page.locator('[data-test=phone]').waitFor();
  const phone = freshPhone();
  await page.locator('[data-test=phone]').fill(phone);
  await clickAndWait(page, '[data-test=send-code]');
  await page.locator('[data-test=code]').fill(await latestSmsCode(phone));
  await clickAndWait(page, '[data-test=login-submit]');
  return phone;
}

/** The cashier's counter for a store, in its own (desktop, zh-CN) browser, listening live. */
async function openCounter(storeId) {
  const context = await newDesktop(browser);
  const page = await context.newPage();
  await page.goto(`${baseUrl}/console/login`);
  await page.locator('[data-test=email]').fill(CASHIER);
  await page.locator('[data-test=password]').fill(DEMO_PASSWORD);
  await clickAndWait(page, '[data-test=login-submit]');
  assert.equal(new URL(page.url()).pathname, '/console', `cashier login ended on ${page.url()}`);
  const res = await page.goto(`${baseUrl}/console/counter?store_id=${storeId}`);
  assert.equal(res?.status(), 200);
  await page.locator('[data-test=counter-form]').waitFor();
  // The live stream is open before any money moves.
  await page.locator('[data-test=announcement][data-live=yes]').waitFor({ timeout: 10_000 });
  return { context, page };
}

/** The wallet balance as the wallet page shows it. */
async function walletBalance(page) {
  await page.goto(`${baseUrl}/me/wallet`);
  return text(page.locator('[data-test=wallet-balance]'));
}

test('a consumer scans the store code, tops up and pays ¥25.00; the counter announces it live', { timeout: 120_000 }, async () => {
  const { store, url } = await storeWithPayCode();
  const counter = await openCounter(store.id);
  const phone = await newPhone(browser);
  try {
    const page = await phone.newPage();
    // Scan: the amount page names the merchant and store.
    const res = await page.goto(url);
    assert.equal(res?.status(), 200);
    await page.locator('[data-test=pay-form]').waitFor();
    assert.match(await text(page.locator('[data-test=merchant-name]')), /Lotus Coffee/);

    // A guest paying is sent to log in, and comes back to the code.
    await page.locator('[data-test=amount]').fill('25.00');
    await clickAndWait(page, '[data-test=pay-submit]');
    assert.equal(new URL(page.url()).pathname, '/login', `paying as a guest ended on ${page.url()}`);
    await logInOnLoginPage(page);
    assert.equal(new URL(url).pathname, new URL(page.url()).pathname, `login ended on ${page.url()}`);

    // An empty wallet: refused, nothing paid, a top-up offered that comes back here.
    await page.locator('[data-test=amount]').fill('25.00');
    await clickAndWait(page, '[data-test=pay-submit]');
    await page.locator('[data-test=error]').waitFor();
    await shot(page, 'payments-1-insufficient');
    await clickAndWait(page, '[data-test=top-up-link]');
    assert.equal(new URL(page.url()).pathname, '/me/wallet');
    await page.locator('[data-test=top-up-amount]').fill('100.00');
    await shot(page, 'payments-1-top-up');
    await clickAndWait(page, '[data-test=top-up-submit]');
    assert.equal(new URL(page.url()).pathname, new URL(url).pathname, `top-up ended on ${page.url()}`);

    // Pay ¥25.00: the receipt, and the counter hears it.
    await page.locator('[data-test=amount]').fill('25.00');
    await clickAndWait(page, '[data-test=pay-submit]');
    assert.match(new URL(page.url()).pathname, /^\/me\/payments\/pay_/, `paying ended on ${page.url()}`);
    await page.locator('[data-test=receipt]').waitFor();
    assert.equal(await text(page.locator('[data-test=receipt-amount]')), '¥25.00');
    assert.match(await text(page.locator('[data-test=receipt-merchant]')), /Lotus Coffee/);
    assert.equal(await text(page.locator('[data-test=receipt-store]')), store.name);
    assert.equal(await page.locator('[data-test=receipt]').getAttribute('data-status'), 'succeeded');
    const paymentId = await page.locator('[data-test=receipt]').getAttribute('data-payment-id');
    await shot(page, 'payments-1-receipt');

    const announced = counter.page.locator(`[data-test=announcement][data-payment-id="${paymentId}"]`);
    await announced.waitFor({ timeout: 5_000 });
    assert.match(await text(announced), /¥25\.00/);
    assert.match(await text(announced), /收款/);
    // The day's list picks the payment up without a reload.
    await counter.page
      .locator(`[data-test=counter-payment][data-payment-id="${paymentId}"] [data-test=counter-payment-amount]`, { hasText: '¥25.00' })
      .waitFor({ timeout: 5_000 });
    await shot(counter.page, 'payments-1-counter-announced');

    assert.equal(await walletBalance(page), '¥75.00');
    await shot(page, 'payments-1-wallet');
  } finally {
    await phone.close();
    await counter.context.close();
  }
});

test('the cashier takes a typed pay code and refunds it from the counter', { timeout: 120_000 }, async () => {
  const { store } = await storeWithPayCode();
  const phone = await newPhone(browser, { locale: 'en' });
  const counter = await openCounter(store.id);
  try {
    // The consumer logs in, tops up ¥50.00 and shows a pay code.
    const page = await phone.newPage();
    await page.goto(`${baseUrl}/login?next=/me/wallet`);
    await logInOnLoginPage(page);
    assert.equal(new URL(page.url()).pathname, '/me/wallet');
    await page.locator('[data-test=top-up-amount]').fill('50');
    await clickAndWait(page, '[data-test=top-up-submit]');
    assert.equal(await text(page.locator('[data-test=wallet-balance]')), '¥50.00');
    await page.goto(`${baseUrl}/me/pay-code`);
    const shown = page.locator('[data-test=pay-code-page] [data-pay-code]:visible');
    await shown.first().waitFor();
    const digits = await shown.first().getAttribute('data-pay-code');
    assert.match(digits ?? '', /^19\d{16}$/);

    // The cashier types the amount, then the code, and Enter (as a scanner does).
    const c = counter.page;
    await c.locator('[data-test=counter-amount]').fill('12.50');
    await c.locator('[data-test=counter-pay-code]').fill(digits);
    await Promise.all([
      c.waitForNavigation({ waitUntil: 'load' }),
      c.locator('[data-test=counter-pay-code]').press('Enter'),
    ]);
    assert.equal(await c.locator('[data-test=error]').count(), 0, 'the counter showed an error');
    const row = c.locator('[data-test=counter-payment] >> nth=0');
    assert.equal(await text(row.locator('[data-test=counter-payment-amount]')), '¥12.50');
    await shot(c, 'payments-2-counter-paid');

    // The consumer's wallet shows it.
    assert.equal(await walletBalance(page), '¥37.50');
    assert.equal(await text(page.locator('[data-test=wallet-entry-amount] >> nth=0')), '-¥12.50');
    await shot(page, 'payments-2-wallet-paid');

    // Refund ¥2.50, then the rest: the wallet goes back up each time.
    const paymentId = await row.getAttribute('data-payment-id');
    const sameRow = c.locator(`[data-test=counter-payment][data-payment-id="${paymentId}"]`);
    await sameRow.locator('[data-test=refund-amount]').fill('2.50');
    await clickAndWait(c, `[data-test=counter-payment][data-payment-id="${paymentId}"] [data-test=refund-submit]`);
    assert.equal(await c.locator('[data-test=error]').count(), 0, 'the partial refund showed an error');
    assert.equal(await text(sameRow.locator('[data-test=counter-payment-refunded]')), '¥2.50');
    assert.equal(await walletBalance(page), '¥40.00');

    await clickAndWait(c, `[data-test=counter-payment][data-payment-id="${paymentId}"] [data-test=refund-submit]`);
    assert.equal(await c.locator('[data-test=error]').count(), 0, 'the full refund showed an error');
    assert.equal(await text(sameRow.locator('[data-test=counter-payment-refunded]')), '¥12.50');
    assert.equal(await sameRow.locator('[data-test=refund-form]').count(), 0, 'a refunded payment offers a refund');
    await shot(c, 'payments-3-counter-refunded');
    assert.equal(await walletBalance(page), '¥50.00');
    await shot(page, 'payments-3-wallet-refunded');
  } finally {
    await phone.close();
    await counter.context.close();
  }
});

test('a cashier records cash; the manager sees it on the balance page and downloads the statement', { timeout: 90_000 }, async () => {
  const { store } = await storeWithPayCode();
  const counter = await openCounter(store.id);
  try {
    const c = counter.page;
    await c.locator('[data-test=counter-amount]').fill('8.80');
    await clickAndWait(c, '[data-test=counter-cash]');
    assert.equal(await c.locator('[data-test=error]').count(), 0, 'recording cash showed an error');
    assert.equal(await text(c.locator('[data-test=counter-payment-amount] >> nth=0')), '¥8.80');

    // A bad amount is refused with a message and takes nothing.
    const before = await c.locator('[data-test=counter-payment]').count();
    await c.locator('[data-test=counter-amount]').fill('1.234');
    await clickAndWait(c, '[data-test=counter-cash]');
    await c.locator('[data-test=error]').waitFor();
    assert.equal(await c.locator('[data-test=counter-payment]').count(), before);
  } finally {
    await counter.context.close();
  }

  const context = await newDesktop(browser, { locale: 'en' });
  try {
    const page = await context.newPage();
    await page.goto(`${baseUrl}/console/login`);
    await page.locator('[data-test=email]').fill(OWNER);
    await page.locator('[data-test=password]').fill(DEMO_PASSWORD);
    await clickAndWait(page, '[data-test=login-submit]');
    await clickAndWait(page, '[data-test=nav-balance]');
    assert.equal(new URL(page.url()).pathname, '/console/balance');
    assert.match(await text(page.locator('[data-test=balance-cash]')), /^¥\d+\.\d{2}$/);
    assert.notEqual(await text(page.locator('[data-test=statement-cash]')), '¥0.00');
    await shot(page, 'payments-4-balance');
    const href = await page.locator('[data-test=statement-csv]').getAttribute('href');
    assert.match(href ?? '', /^\/console\/balance\/statements\/\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = await page.evaluate(async (h) => (await fetch(h)).text(), href);
    assert.match(csv, /^merchant_id,date,currency,gross,refunds,fees,net,count,refund_count,cash\n/);
  } finally {
    await context.close();
  }
});
