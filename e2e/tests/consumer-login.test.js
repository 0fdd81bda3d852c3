// A consumer on a phone (zh-CN): nearby stores on the home page, a store visited as a guest,
// then phone + one-time-code login that lands back on the store, and "me".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newPhone, shot } from '../lib/browser.js';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** A mainland mobile number nobody used yet (codes are rate-limited per phone). */
function freshPhone() {
  const digits = String(Math.floor(Math.random() * 1e8)).padStart(8, '0');
  return `139${digits}`;
}

/** The newest one-time code the dev outbox holds for a phone. */
async function latestCode(phone) {
  const res = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${phone}`)}`);
  assert.equal(res.status, 200, `dev outbox answered ${res.status}: ${JSON.stringify(res.body)}`);
  assert.ok(Array.isArray(res.body?.data) && res.body.data.length > 0, `no SMS for +86${phone}`);
  const { code } = res.body.data[0];
  assert.match(code ?? '', /^\d{6}$/, `outbox code ${code}`);
  return code;
}

/** Open the login page, enter a phone and ask for a code; the page then asks for the code. */
async function requestCode(page, phone) {
  await page.locator('[data-test=phone]').fill(phone);
  await clickAndWait(page, '[data-test=send-code]');
  await page.locator('[data-test=code-sent]').waitFor();
  assert.equal(await page.locator('[data-test=error]').count(), 0, 'an error was shown after sending the code');
  await page.locator('[data-test=code]').waitFor();
}

test('home → store as guest → login with a code → back on the store, then /me', { timeout: 90_000 }, async () => {
  const context = await newPhone(browser, { locale: 'zh-CN' });
  try {
    const page = await context.newPage();

    // Home: the demo's stores near the default centre, each with a distance and open/closed.
    const home = await page.goto(`${baseUrl}/`);
    assert.equal(home?.status(), 200);
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    const items = page.locator('[data-test=store-item]');
    await items.first().waitFor();
    await shot(page, 'consumer-login-1-home');
    assert.ok((await items.count()) >= 2, 'the demo seeds two stores in Shanghai');
    const first = items.first();
    assert.match((await first.locator('[data-test=distance]').innerText()).trim(), /^\d+(\.\d+)?\s*k?m$/);
    assert.equal(await first.locator('[data-test=open], [data-test=closed]').count(), 1);
    assert.ok(await page.getByText('莲花咖啡', { exact: false }).first().isVisible());

    // A store, as a guest: the nav still offers login.
    await clickAndWait(page, '[data-test=store-item] >> nth=0 >> a');
    const storePath = new URL(page.url()).pathname;
    assert.match(storePath, /^\/stores\/[A-Za-z0-9_]+$/);
    await page.locator('[data-test=store]').waitFor();
    await shot(page, 'consumer-login-2-store-guest');
    assert.match(await page.locator('[data-test=merchant-name]').innerText(), /莲花咖啡/);
    await page.locator('[data-test=merchant-verified]').waitFor();
    const cookies = await context.cookies(baseUrl);
    assert.ok(cookies.some((c) => c.name === 'o2o_session' && c.value), 'visiting a store starts a guest session');
    await page.locator('[data-test=nav-login]').waitFor();
    assert.equal(await page.locator('[data-test=nav-me]').count(), 0);

    // Login via the nav: it carries next=<the store>.
    await clickAndWait(page, '[data-test=nav-login]');
    const loginUrl = new URL(page.url());
    assert.equal(loginUrl.pathname, '/login');
    assert.equal(loginUrl.searchParams.get('next'), storePath);
    await shot(page, 'consumer-login-3-login');

    const phone = freshPhone();
    await requestCode(page, phone);
    assert.match(await page.locator('[data-test=code-sent]').innerText(), new RegExp(phone.slice(-4)));
    await shot(page, 'consumer-login-4-code-sent');

    const code = await latestCode(phone);
    await page.locator('[data-test=code]').fill(code);
    await clickAndWait(page, '[data-test=login-submit]');

    // Back on the store, logged in.
    assert.equal(new URL(page.url()).pathname, storePath);
    await page.locator('[data-test=store]').waitFor();
    await page.locator('[data-test=nav-me]').waitFor();
    assert.equal(await page.locator('[data-test=nav-login]').count(), 0);
    assert.equal((await page.locator('[data-test=nav-me]').innerText()).trim(), '我的');
    await shot(page, 'consumer-login-5-store-logged-in');

    // Me: the last four digits of the phone.
    await clickAndWait(page, '[data-test=nav-me]');
    assert.equal(new URL(page.url()).pathname, '/me');
    await page.locator('[data-test=me-phone]').waitFor();
    assert.match(await page.locator('[data-test=me-phone]').innerText(), new RegExp(`${phone.slice(-4)}$`));
    await page.locator('[data-test=logout]').waitFor();
    await shot(page, 'consumer-login-6-me');
  } finally {
    await context.close();
  }
});

test('a wrong code shows an error and stays on the login page', { timeout: 60_000 }, async () => {
  const context = await newPhone(browser, { locale: 'zh-CN' });
  try {
    const page = await context.newPage();
    await page.goto(`${baseUrl}/login?next=/me`);
    await page.locator('[data-test=phone]').waitFor();
    await shot(page, 'consumer-login-wrong-1-login');

    const phone = freshPhone();
    await requestCode(page, phone);
    await shot(page, 'consumer-login-wrong-2-code-sent');

    const real = await latestCode(phone);
    const wrong = String((Number(real) + 1) % 1_000_000).padStart(6, '0');
    await page.locator('[data-test=code]').fill(wrong);
    await clickAndWait(page, '[data-test=login-submit]');

    const url = new URL(page.url());
    assert.equal(url.pathname, '/login', `expected to stay on /login, got ${url.pathname}`);
    await page.locator('[data-test=error]').waitFor();
    assert.notEqual((await page.locator('[data-test=error]').innerText()).trim(), '');
    // Still asking for the code, for the same phone, and not logged in.
    await page.locator('[data-test=code]').waitFor();
    assert.match(await page.locator('[data-test=code-sent]').innerText(), new RegExp(phone.slice(-4)));
    await page.locator('[data-test=nav-login]').waitFor();
    assert.equal(await page.locator('[data-test=nav-me]').count(), 0);
    await shot(page, 'consumer-login-wrong-3-error');

    const me = await page.goto(`${baseUrl}/me`);
    assert.equal(new URL(page.url()).pathname, '/login', 'a failed login must not give a session');
    assert.equal(me?.status(), 200);
    await shot(page, 'consumer-login-wrong-4-me-redirects');
  } finally {
    await context.close();
  }
});
