// Delivery and the scan-and-go camera on pages. (a) A phone orders delivery from the demo café's
// Bund store (open round the clock): the quote shows the fee, the minimum and the arrival time as
// items are chosen and the address typed; an address outside the radius is refused clearly; "use
// my location" fills the coordinates; paid from the wallet, the order appears on the kitchen
// board with its address and distance, is moved to ready for delivery, and the phone's order
// page shows it ready live. (b) Scan-and-go: a photo with no barcode says so; a photo of a
// product's EAN-13 label adds that product to the basket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, clickAndWait, launch, shot } from '../lib/browser.js';
import { blankPng, ean13Png } from '../lib/barcode.js';
import { CASHIER, LIVE, bund, consumerPhone as phoneOf, staffConsole as consoleOf, text } from '../lib/demo.js';

// The Bund store is at 31.2400, 121.4900 and delivers within 3 km.
const NEAR = { latitude: 31.2420, longitude: 121.4880 };
const FAR = { latitude: 31.3000, longitude: 121.4900 };

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const consumerPhone = (yuan) => phoneOf(browser, yuan, { prefix: '135' });
const staffConsole = (email) => consoleOf(browser, email);

/** Waits until the quote part says `state` (none, ok or refused). */
async function quoteSays(page, state) {
  await page.locator(`[data-test=quote] [data-test=quote-state][data-state=${state}]`).waitFor(LIVE);
}

test('delivery: quote, refused outside the radius, ordered and paid; the kitchen board shows the address and marks it ready; the phone sees it live', { timeout: 180_000 }, async () => {
  const { store, product } = await bund();
  const latte = product('拿铁');
  const water = product('瓶装矿泉水');
  const consumer = await consumerPhone(200);
  const kitchen = await staffConsole(CASHIER);
  try {
    const page = consumer.page;
    // The home page and the store page lead to delivery.
    assert.equal((await page.goto(`${baseUrl}/`))?.status(), 200);
    assert.ok((await page.locator(`[data-test=delivery-link][href="/stores/${store.id}/delivery"]`).count()) >= 1);
    assert.equal((await page.goto(`${baseUrl}/stores/${store.id}`))?.status(), 200);
    await clickAndWait(page, '[data-test=delivery-link]');
    await page.locator('[data-test=delivery-form]').waitFor();
    assert.match(await text(page.locator('[data-test=delivery-terms]')), /3\.0 公里.*¥5\.00.*¥20\.00/);
    await quoteSays(page, 'none');

    // One water, far away: refused as soon as the coordinates are typed.
    await page.locator(`[data-test=menu-item][data-product="${water.id}"] [data-test=qty]`).fill('1');
    await page.locator('[data-test=address-text]').fill('上海市宝山区很远路 1 号');
    await page.locator('[data-test=lat]').fill(String(FAR.latitude));
    await page.locator('[data-test=lng]').fill(String(FAR.longitude));
    await quoteSays(page, 'refused');
    assert.match(await text(page.locator('[data-test=quote-refusal]')), /超出了门店的配送范围（3\.0 公里内）/);
    // Ordering anyway is refused with the same words, and the address is kept.
    await clickAndWait(page, '[data-test=delivery-submit]');
    assert.match(await text(page.locator('[data-test=error]')), /超出了门店的配送范围/);
    assert.equal(await page.locator('[data-test=address-text]').inputValue(), '上海市宝山区很远路 1 号');
    // …and so are the items and the coordinates, the refusal next to the coordinates.
    assert.equal(await page.locator(`[data-test=menu-item][data-product="${water.id}"] [data-test=qty]`).inputValue(), '1');
    assert.equal(await page.locator('[data-test=lat]').inputValue(), String(FAR.latitude));
    assert.equal(await page.locator('[data-test=error]').getAttribute('data-at'), 'coordinates');
    await shot(page, 'delivery-0-refused-kept');

    // "Use my location" (the phone is at a flat 300 m from the store) fills the coordinates.
    await consumer.context.grantPermissions(['geolocation'], { origin: baseUrl });
    await consumer.context.setGeolocation(NEAR);
    await page.locator('[data-test=address-text]').fill('上海市黄浦区圆明园路 2 号 301 室');
    await page.locator(`[data-test=menu-item][data-product="${water.id}"] [data-test=qty]`).fill('1');
    await page.locator('[data-test=locate]').click();
    await quoteSays(page, 'ok');
    assert.equal(await page.locator('[data-test=lat]').inputValue(), NEAR.latitude.toFixed(6));
    // One water is short of the ¥20 minimum: the quote says by how much.
    assert.match(await text(page.locator('[data-test=quote-short]')), /还差 ¥15\.00/);
    assert.equal(await text(page.locator('[data-test=quote-fee]')), '¥5.00');
    assert.match(await text(page.locator('[data-test=quote-distance]')), /^\d+ m$/);
    assert.match(await text(page.locator('[data-test=quote-arrives]')), /^\d\d:\d\d \(约 \d+ 分钟\)$/);

    // A large latte as well: ¥31 + ¥5 + fee ¥5, nothing short.
    const latteRow = page.locator(`[data-test=menu-item][data-product="${latte.id}"]`);
    await latteRow.locator('select[data-group=size]').selectOption('large');
    await latteRow.locator('[data-test=qty]').fill('1');
    await page.locator('[data-test=quote-total]', { hasText: '¥41.00' }).waitFor(LIVE);
    assert.equal(await page.locator('[data-test=quote-short]').count(), 0);
    const arrives = (await text(page.locator('[data-test=quote-arrives]'))).slice(0, 5);
    await page.locator('[data-test=contact-phone]').fill(consumer.phone);
    await shot(page, 'delivery-1-quote');
    await clickAndWait(page, '[data-test=delivery-submit]');
    assert.match(new URL(page.url()).pathname, /^\/me\/orders\/ord_/, `ordering ended on ${page.url()}`);
    const orderId = await page.locator('[data-test=order]').getAttribute('data-order-id');
    await page.locator('[data-test=order][data-live=yes]').waitFor(LIVE);
    await page.locator('[data-test=paid]').waitFor();
    assert.match(await text(page.locator('[data-test=delivery-address]')), /圆明园路 2 号 301 室/);
    const promised = await text(page.locator('[data-test=promised-at]'));
    assert.match(promised, /^\d\d:\d\d$/);
    assert.ok(Math.abs(toMinutes(promised) - toMinutes(arrives)) <= 1, `${promised} vs quoted ${arrives}`);
    assert.equal(await text(page.locator('[data-test=order-total]')), '¥41.00');
    await shot(page, 'delivery-2-order');

    // The kitchen board shows it with the address, the distance and the promise.
    const board = kitchen.page;
    assert.equal((await board.goto(`${baseUrl}/console/kitchen?store_id=${store.id}`))?.status(), 200);
    const card = (status) => board.locator(`[data-test=column][data-status=${status}] [data-test=order-card][data-order-id="${orderId}"]`);
    await card('placed').waitFor(LIVE);
    assert.match(await text(card('placed').locator('[data-test=card-address]')), /圆明园路 2 号 301 室 · \d+ m/);
    assert.equal(await text(card('placed').locator('[data-test=card-promised]')), promised);
    assert.match(await text(card('placed').locator('[data-test=card-phone]')), new RegExp(consumer.phone));
    await board.locator('[data-test=board][data-live=yes]').waitFor(LIVE);
    for (const [from, step] of [['placed', 'accept'], ['accepted', 'start'], ['preparing', 'ready']]) {
      await card(from).waitFor(LIVE);
      if (step === 'ready') assert.equal(await text(card(from).locator('[data-test=step-ready]')), '备好待配送');
      await clickAndWait(board, `[data-test=column][data-status=${from}] [data-test=order-card][data-order-id="${orderId}"] [data-test=step-${step}]`);
    }
    await card('ready').locator('[data-test=awaiting-rider]').waitFor();
    await shot(board, 'delivery-3-kitchen-ready');

    // The phone shows it ready for delivery without reloading.
    await page.locator('[data-test=order][data-status=ready]').waitFor(LIVE);
    assert.match(await text(page.locator('[data-test=ready-message]')), /等待骑手配送/);
    await shot(page, 'delivery-4-ready');
  } finally {
    await Promise.all([consumer.context.close(), kitchen.context.close()]);
  }
});

function toMinutes(hhmm) {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + m;
}

test('scan-and-go camera: a photo without a barcode says so; a photo of a label adds its product', { timeout: 120_000 }, async () => {
  const { store, product } = await bund();
  const croissant = product('可颂');
  assert.match(croissant.barcode ?? '', /^\d{13}$/);
  const consumer = await consumerPhone(50);
  try {
    const page = consumer.page;
    assert.equal((await page.goto(`${baseUrl}/stores/${store.id}/scan-and-go`))?.status(), 200);
    await page.locator('[data-test=scan-camera]:not([hidden])').waitFor();
    await page.locator('[data-test=basket-empty]').waitFor();

    // A photo of nothing: the page says no barcode was found.
    await Promise.all([
      page.waitForURL(/photo_error=barcode_not_found/, LIVE),
      page.locator('[data-test=scan-photo]').setInputFiles({ name: 'blank.png', mimeType: 'image/png', buffer: blankPng() }),
    ]);
    assert.match(await text(page.locator('[data-test=error]')), /照片里没有找到条码/);
    await page.locator('[data-test=basket-empty]').waitFor();
    await page.locator('[data-test=scan-camera]:not([hidden])').waitFor();
    await shot(page, 'delivery-5-scan-no-barcode');

    // A photo of the croissant's label: in the basket.
    await Promise.all([
      page.waitForURL((url) => url.searchParams.has('order') && !url.searchParams.has('photo_error'), LIVE),
      page.locator('[data-test=scan-photo]').setInputFiles({ name: 'label.png', mimeType: 'image/png', buffer: ean13Png(croissant.barcode) }),
    ]);
    await page.locator('[data-test=basket]').waitFor();
    assert.equal(await page.locator('[data-test=basket] [data-test=order-line]').count(), 1);
    assert.equal(await text(page.locator('[data-test=line-name]')), '可颂');
    assert.equal(await text(page.locator('[data-test=order-total]')), '¥15.00');
    // The same empty basket was used, not a second one.
    const orderId = await page.locator('[data-test=basket]').getAttribute('data-order-id');
    assert.equal(new URL(page.url()).searchParams.get('order'), orderId);
    await shot(page, 'delivery-6-scan-photo-added');
  } finally {
    await consumer.context.close();
  }
});
