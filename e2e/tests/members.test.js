// Member cards on pages. The demo merchant's owner runs a program through the API (top up ¥100,
// get ¥10; a point per yuan) and funds its bonus budget, and prices two coupons in points (50 and
// 5,000); a consumer scans the store's pay code, logs in, tops the wallet up, joins with one tap,
// tops the card up with ¥100 (the card shows ¥100.00 and a ¥10.00 bonus), then pays ¥105.00 with
// the card from the pay code: the paid part goes first, then ¥5.00 of the bonus, and the card
// earns 100 points. On the card page the dear coupon is refused with a message (nothing changes),
// the cheap one is exchanged: the points drop to 50 and the coupon is in "my coupons".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newPhone, shot } from '../lib/browser.js';

const DEMO_PASSWORD = 'o2o-demo-2026';
const OWNER = 'owner@lotus.demo';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const text = async (locator) => (await locator.innerText()).trim();

async function ownerSetup() {
  const login = await api('/v1/sessions', { body: { email: OWNER, password: DEMO_PASSWORD } });
  assert.equal(login.status, 201, JSON.stringify(login.body));
  const token = login.body.token;
  const me = await api('/v1/me', { token });
  const merchant = me.body.merchant_id;
  const program = await api(`/v1/member-programs/${merchant}`, {
    method: 'PUT',
    token,
    body: {
      top_up_bonuses: [{ min_top_up: 10000, bonus: 1000 }],
      points_per_yuan: 1,
      tiers: [{ name: 'Gold', min_spend: 100000, percent_off: 5 }],
    },
  });
  assert.equal(program.status, 200, JSON.stringify(program.body));
  const budget = await api(`/v1/member-programs/${merchant}/budget-top-ups`, {
    token,
    body: { amount: 100000, currency: 'CNY' },
  });
  assert.equal(budget.status, 201, JSON.stringify(budget.body));
  const stores = await api(`/v1/merchants/${merchant}/stores`, { token });
  const store = stores.body.data[0];
  const code = await api('/v1/qr-codes', { body: { kind: 'store_pay', store_id: store.id }, token });
  assert.ok([200, 201].includes(code.status), JSON.stringify(code.body));
  const pointsCoupon = async (name, amountOff, pointsPrice) => {
    const res = await api('/v1/coupon-templates', {
      token,
      body: {
        merchant_id: merchant, name, kind: 'amount_off', amount_off: amountOff, currency: 'CNY',
        total_stock: 1000, per_consumer_limit: 5, points_price: pointsPrice,
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.points_price, pointsPrice);
    return res.body.id;
  };
  const suffix = Math.floor(Math.random() * 1e6);
  const cheapName = `Points ¥3 off ${suffix}`;
  const cheap = await pointsCoupon(cheapName, 300, 50);
  const dear = await pointsCoupon(`Points ¥50 off ${suffix}`, 5000, 5000);
  return { url: code.body.url, cheap, cheapName, dear };
}

function freshPhone() {
  return `136${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

async function latestSmsCode(phone) {
  const res = await api(`/v1/dev/outbox?to=${encodeURIComponent(`+86${phone}`)}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.data[0].code;
}

test('a consumer joins a member card, tops it up with a bonus, pays with it and exchanges the points for a coupon', async () => {
  const { url, cheap, cheapName, dear } = await ownerSetup();
  const context = await newPhone(browser, { locale: 'en-US' });
  const page = await context.newPage();
  try {
    const phone = freshPhone();
    await page.goto(`${baseUrl}/login?next=/me/wallet`);
    await page.locator('[data-test=phone]').fill(phone);
    await clickAndWait(page, '[data-test=send-code]');
    await page.locator('[data-test=code]').fill(await latestSmsCode(phone));
    await clickAndWait(page, '[data-test=login-submit]');
    await page.locator('[data-test=top-up-amount]').fill('200.00');
    await clickAndWait(page, '[data-test=top-up-submit]');

    // Join with one tap on the store's pay code.
    await page.goto(url);
    await page.locator('[data-test=join-program]').waitFor();
    await shot(page, 'members-1-join');
    await clickAndWait(page, '[data-test=join-program]');
    assert.match(new URL(page.url()).pathname, /^\/me\/cards\/crd_/);
    assert.equal(await text(page.locator('[data-test=card-balance]')), '¥0.00');

    // Top up ¥100: ¥10 bonus.
    await page.locator('[data-test=card-top-up-amount]').fill('100.00');
    await clickAndWait(page, '[data-test=card-top-up-submit]');
    assert.equal(await text(page.locator('[data-test=card-balance]')), '¥100.00');
    assert.equal(await text(page.locator('[data-test=card-bonus]')), '¥10.00');
    await shot(page, 'members-2-topped-up');
    const cardUrl = page.url();

    // Pay ¥105 with the card from the pay code: ¥100 paid part, then ¥5 of the bonus.
    await page.goto(url);
    await page.locator('[data-test=source-card]').check();
    await page.locator('[data-test=amount]').fill('105.00');
    await shot(page, 'members-3-pay-with-card');
    await clickAndWait(page, '[data-test=pay-submit]');
    assert.match(new URL(page.url()).pathname, /^\/me\/payments\/pay_/);
    await page.goto(cardUrl);
    assert.equal(await text(page.locator('[data-test=card-balance]')), '¥0.00');
    assert.equal(await text(page.locator('[data-test=card-bonus]')), '¥5.00');
    assert.equal(await text(page.locator('[data-test=card-points]')), '100');
    // The tier's way up: Gold is ¥895.00 of spending away.
    assert.match(await text(page.locator('[data-test=next-tier]')), /Spend ¥895\.00 more to reach Gold/);
    await shot(page, 'members-4-after-payment');

    // 5,000 points for the dear coupon: refused on the page, the points stay.
    const dearOffer = page.locator(`[data-test=exchange-offer][data-template=${dear}]`);
    assert.equal(await text(dearOffer.locator('[data-test=exchange-offer-price]')), '5000');
    await clickAndWait(page, `[data-test=exchange-offer][data-template=${dear}] [data-test=exchange-submit]`);
    assert.equal(await text(page.locator('[data-test=exchange-error]')), 'This coupon costs 5000 points; the card has 100.');
    assert.equal(await text(page.locator('[data-test=card-points]')), '100');
    await shot(page, 'members-5-exchange-refused');

    // 50 points for the cheap one: the points drop and the coupon is the consumer's.
    await clickAndWait(page, `[data-test=exchange-offer][data-template=${cheap}] [data-test=exchange-submit]`);
    await page.locator('[data-test=exchange-notice]').waitFor();
    assert.equal(await text(page.locator('[data-test=card-points]')), '50');
    assert.equal(await page.locator('[data-test=card-movement][data-kind=exchange]').count(), 1);
    await shot(page, 'members-6-exchanged');
    await clickAndWait(page, '[data-test=exchange-notice] [data-test=my-coupons-link]');
    assert.equal(new URL(page.url()).pathname, '/me/coupons');
    await page.getByText(cheapName).first().waitFor();
    await shot(page, 'members-7-my-coupons');
  } finally {
    await context.close();
  }
});
