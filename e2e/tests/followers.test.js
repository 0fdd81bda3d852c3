// The free-WiFi login and the merchant's messages: a phone opens the demo store's WiFi code as
// the store's router would send it (gateway, MAC, IP, token, the page first asked for), logs in
// with a one-time code, ticks "follow" and is online; the store's router is told the device is
// allowed. The merchant's manager then writes a message to the followers in the console and
// watches it delivered; the consumer's inbox shows it with an unread count and marks it read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newDesktop, newPhone, shot } from '../lib/browser.js';

const DEMO_PASSWORD = 'o2o-demo-2026';
const OWNER = 'owner@lotus.demo';
const MANAGER = 'manager@lotus.demo';
const MERCHANT_NAME = '莲花咖啡 Lotus Coffee';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function staffToken(email) {
  const res = await api('/v1/sessions', { body: { email, password: DEMO_PASSWORD } });
  assert.equal(res.status, 201, `login ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** The demo store with a WiFi code, and that code. */
async function wifiSpot(token) {
  const me = await api('/v1/me', { token });
  const merchantId = me.body.merchant_id;
  const stores = await api(`/v1/merchants/${merchantId}/stores`, { token });
  assert.equal(stores.status, 200, JSON.stringify(stores.body));
  for (const store of stores.body.data) {
    const codes = await api(`/v1/qr-codes?store_id=${store.id}&limit=100`, { token });
    assert.equal(codes.status, 200, JSON.stringify(codes.body));
    const wifi = codes.body.data.find((c) => c.kind === 'wifi' && c.status === 'active');
    if (wifi) return { merchantId, store, code: wifi };
  }
  assert.fail('the demo data has no WiFi code');
}

function freshPhone() {
  return `136${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

function randomMac() {
  return Array.from({ length: 6 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':');
}

async function latestSmsCode(phone) {
  const res = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${phone}`)}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const { code } = res.body.data[0];
  assert.match(code ?? '', /^\d{6}$/);
  return code;
}

const text = async (locator) => (await locator.innerText()).trim();

test('WiFi login with follow, then a broadcast from the console reaches the inbox', { timeout: 120_000 }, async () => {
  const owner = await staffToken(OWNER);
  const { merchantId, store, code } = await wifiSpot(owner);
  const key = await api(`/v1/stores/${store.id}/wifi-key`, { body: {}, token: owner });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  assert.match(key.body.secret ?? '', /^wk_/);
  const followersBefore = (await api(`/v1/merchants/${merchantId}/followers/count`, { token: owner })).body.followers;

  const mac = randomMac();
  const tok = `tok${Date.now().toString(36)}`;
  const phone = freshPhone();
  const title = `拿铁第二杯半价 ${Date.now().toString(36)}`;

  const consumer = await newPhone(browser);
  const desk = await newDesktop(browser, { locale: 'en' });
  try {
    const page = await consumer.newPage();
    // The router sends the phone to the code's URL with its parameters.
    const portal = new URL(code.url);
    portal.search = new URLSearchParams({ gw: 'lotus-jingan', mac, ip: '192.168.8.23', tok, redir: 'http://example.com/' }).toString();
    const res = await page.goto(portal.toString());
    assert.equal(res?.status(), 200);
    const login = page.locator('[data-test=wifi-login]');
    await login.waitFor();
    assert.equal(await login.getAttribute('data-step'), 'phone');
    assert.equal(await text(page.locator('[data-test=merchant-name]')), MERCHANT_NAME);
    assert.equal(await text(page.locator('[data-test=store-name]')), store.name);
    await shot(page, 'followers-1-wifi-login');

    // Phone, then the code; "follow" starts unticked and is ticked by the consumer.
    await page.locator('[data-test=phone]').fill(phone);
    await clickAndWait(page, '[data-test=send-code]');
    assert.equal(await page.locator('[data-test=wifi-login]').getAttribute('data-step'), 'code');
    await page.locator('[data-test=code]').fill(await latestSmsCode(phone));
    const followBox = page.locator('[data-test=wifi-follow]');
    assert.equal(await followBox.isChecked(), false, 'follow is unticked by default');
    await followBox.check();
    await shot(page, 'followers-2-wifi-code-follow');
    await clickAndWait(page, '[data-test=wifi-connect]');
    await page.locator('[data-test=wifi-online]').waitFor();
    assert.ok(await page.locator('[data-test=wifi-online] [data-test=following]').isVisible());
    assert.match(await text(page.locator('[data-test=wifi-until]')), /^\d{2}:\d{2}$/);
    await shot(page, 'followers-3-wifi-online');

    // The store's router asks whether the device may go online.
    const verdict = await api('/v1/wifi/grants/verify', { body: { mac, tok }, token: key.body.secret });
    assert.equal(verdict.status, 200, JSON.stringify(verdict.body));
    assert.equal(verdict.body.allowed, true);
    assert.match(verdict.body.consumer_id ?? '', /^usr_/);
    const followersAfter = (await api(`/v1/merchants/${merchantId}/followers/count`, { token: owner })).body.followers;
    assert.equal(followersAfter, followersBefore + 1);

    // The manager writes to the followers from the console and sees it delivered.
    const consolePage = await desk.newPage();
    await consolePage.goto(`${baseUrl}/console/login`);
    await consolePage.locator('[data-test=email]').fill(MANAGER);
    await consolePage.locator('[data-test=password]').fill(DEMO_PASSWORD);
    await clickAndWait(consolePage, '[data-test=login-submit]');
    await clickAndWait(consolePage, '[data-test=nav-messages]');
    assert.equal(new URL(consolePage.url()).pathname, '/console/messages');
    assert.ok(Number(await text(consolePage.locator('[data-test=follower-count]'))) >= 1);
    await consolePage.locator('[data-test=message-title]').fill(title);
    await consolePage.locator('[data-test=message-body]').fill('今天下午三点前，第二杯半价。\nSecond latte half price until 3 pm.');
    await clickAndWait(consolePage, '[data-test=message-send]');
    assert.equal(await consolePage.locator('[data-test=error]').count(), 0, 'sending showed an error');
    const item = consolePage.locator('[data-test=message-item]', { hasText: title });
    await item.waitFor();
    // The page reloads itself while a message is being delivered; look until it says sent.
    let delivered = false;
    for (let i = 0; i < 60 && !delivered; i += 1) {
      try {
        await consolePage.goto(`${baseUrl}/console/messages`);
        delivered = (await consolePage.locator('[data-test=message-item][data-status=sent]', { hasText: title }).count()) > 0;
      } catch {
        // A reload of the page itself interrupted the look; look again.
      }
      if (!delivered) await consolePage.waitForTimeout(500);
    }
    assert.ok(delivered, `the message "${title}" was not delivered in time`);
    const sent = consolePage.locator('[data-test=message-item][data-status=sent]', { hasText: title });
    assert.ok(Number(await text(sent.locator('[data-test=message-delivered]'))) >= 1);
    await shot(consolePage, 'followers-4-console-sent');

    // The consumer's inbox: one unread message, then read.
    await page.goto(`${baseUrl}/me/inbox`);
    assert.equal(await text(page.locator('[data-test=unread-count]')), '1');
    const first = page.locator('[data-test=inbox-item]').first();
    assert.equal(await text(first.locator('[data-test=inbox-title]')), title);
    assert.equal(await text(first.locator('[data-test=inbox-merchant]')), MERCHANT_NAME);
    assert.equal(await first.getAttribute('data-read'), '0');
    await shot(page, 'followers-5-inbox-unread');
    await clickAndWait(page, '[data-test=inbox-item] [data-test=inbox-mark-read]');
    assert.equal(await text(page.locator('[data-test=unread-count]')), '0');
    assert.equal(await page.locator('[data-test=inbox-item]').first().getAttribute('data-read'), '1');
    await shot(page, 'followers-6-inbox-read');
  } finally {
    await consumer.close();
    await desk.close();
  }
});
