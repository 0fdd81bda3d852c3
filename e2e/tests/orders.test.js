// Orders on pages. (a) Two phones at one table of the demo café's Bund store (open round the
// clock) open the table code; each adds an item and sees the other's appear live; one sends the
// order to the kitchen and pays it from the wallet, while the kitchen board (staff, a third
// browser) shows it appear and moves it to ready. (b) Pickup: order ahead and pay, the order page
// shows the pickup number and code; the cashier types the number at the counter and the
// consumer's page shows the order completed. (c) Scan-and-go: type two demo barcodes, pay, get
// the exit pass; staff scan it (POST /v1/scan) and the page shows the order completed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, shot } from '../lib/browser.js';
import { CASHIER, LIVE, bund, consumerPhone as phoneOf, staffConsole as consoleOf, staffToken, tableCode, text } from '../lib/demo.js';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const consumerPhone = (yuan) => phoneOf(browser, yuan, { prefix: '136' });
const staffConsole = (email) => consoleOf(browser, email);

test('two phones share a table order live; one sends it to the kitchen and pays; the kitchen board moves it to ready', { timeout: 180_000 }, async () => {
  const { store, product } = await bund();
  const { url } = await tableCode(store, 2);
  const latte = product('拿铁');
  const water = product('瓶装矿泉水');
  const cheesecake = product('芝士蛋糕'); // not sold at the Bund today

  const kitchen = await staffConsole(CASHIER);
  const a = await consumerPhone(200);
  const b = await consumerPhone(0);
  try {
    const board = kitchen.page;
    const res = await board.goto(`${baseUrl}/console/kitchen?store_id=${store.id}`);
    assert.equal(res?.status(), 200);
    await board.locator('[data-test=board][data-live=yes]').waitFor(LIVE);

    // Both phones scan the table code.
    for (const p of [a.page, b.page]) {
      assert.equal((await p.goto(url))?.status(), 200);
      await p.locator('[data-test=table-order][data-live=yes]').waitFor(LIVE);
    }
    // Sold out: shown as such, nothing to add.
    const soldRow = a.page.locator(`[data-test=menu-item][data-product="${cheesecake.id}"]`);
    assert.equal(await text(soldRow.locator('[data-test=sold-out]')), '已售罄');
    assert.equal(await soldRow.locator('[data-test=qty]').count(), 0);

    // Phone A: a large latte.
    const latteRow = a.page.locator(`[data-test=menu-item][data-product="${latte.id}"]`);
    await latteRow.locator('select[data-group=size]').selectOption('large');
    await latteRow.locator('[data-test=qty]').fill('1');
    await clickAndWait(a.page, '[data-test=add-to-order]');
    await a.page.locator('[data-test=order-line][data-mine=true]').waitFor();
    assert.match(await text(a.page.locator('[data-test=line-options]').first()), /大杯/);

    // Phone B sees it without reloading, then adds two waters.
    await b.page.locator('[data-test=order-line]').first().waitFor(LIVE);
    assert.equal(await text(b.page.locator('[data-test=line-name]').first()), '拿铁');
    const waterRow = b.page.locator(`[data-test=menu-item][data-product="${water.id}"]`);
    await waterRow.locator('[data-test=qty]').fill('2');
    await clickAndWait(b.page, '[data-test=add-to-order]');
    await b.page.locator('[data-test=order-line][data-mine=true]').waitFor();

    // Phone A sees B's water appear live, with who added it.
    await a.page.locator('[data-test=order-line]:not([data-mine])').waitFor(LIVE);
    const theirs = a.page.locator('[data-test=order-line]:not([data-mine])');
    assert.equal(await text(theirs.locator('[data-test=line-name]')), '瓶装矿泉水');
    assert.match(await text(theirs.locator('[data-test=line-who]')), new RegExp(b.phone.slice(-4)));
    // 拿铁 大杯 (28 + 3) + 2 × 5 = ¥41.00
    assert.equal(await text(a.page.locator('[data-test=order-total]')), '¥41.00');
    await shot(a.page, 'orders-1-table-shared');

    // Phone A sends it to the kitchen; the board shows the new order live.
    await clickAndWait(a.page, '[data-test=place]');
    const orderId = await a.page.locator('[data-test=table-order]').getAttribute('data-order-id');
    assert.match(orderId ?? '', /^ord_/);
    const card = board.locator(`[data-test=column][data-status=placed] [data-test=order-card][data-order-id="${orderId}"]`);
    await card.waitFor(LIVE);
    assert.equal((await card.locator('[data-test=card-line]').count()), 2);
    await shot(board, 'orders-2-kitchen-new');

    // Phone B sees the order sent, live.
    await b.page.locator('[data-test=table-order][data-status=placed]').waitFor(LIVE);

    // Phone A pays it all from the wallet and sees it paid.
    await a.page.locator('[data-test=pay-all]').waitFor();
    await clickAndWait(a.page, '[data-test=pay-all]');
    assert.equal(new URL(a.page.url()).pathname, `/me/orders/${orderId}`);
    await a.page.locator('[data-test=paid]').waitFor();
    await shot(a.page, 'orders-3-table-paid');
    // Phone B sees it paid, live.
    await b.page.locator('[data-test=order-paid-in-full]').waitFor(LIVE);

    // The kitchen moves it along to ready; A's order page follows live.
    for (const [from, step] of [['placed', 'accept'], ['accepted', 'start'], ['preparing', 'ready']]) {
      const c = board.locator(`[data-test=column][data-status=${from}] [data-test=order-card][data-order-id="${orderId}"]`);
      await c.waitFor(LIVE);
      await clickAndWait(board, `[data-test=column][data-status=${from}] [data-test=order-card][data-order-id="${orderId}"] [data-test=step-${step}]`);
    }
    await board.locator(`[data-test=column][data-status=ready] [data-test=order-card][data-order-id="${orderId}"]`).waitFor();
    await shot(board, 'orders-4-kitchen-ready');
    await a.page.locator('[data-test=order][data-status=ready]').waitFor(LIVE);
    await a.page.locator('[data-test=ready-message]').waitFor();

    // The ticket prints 80 mm wide.
    const ticket = await board.context().newPage();
    assert.equal((await ticket.goto(`${baseUrl}/console/orders/${orderId}/ticket`))?.status(), 200);
    assert.equal(await ticket.locator('[data-test=ticket-line]').count(), 2);
    await shot(ticket, 'orders-5-ticket');
  } finally {
    await Promise.all([kitchen.context.close(), a.context.close(), b.context.close()]);
  }
});

test('pickup: order ahead and pay; the cashier hands it over by its number; the order page shows completed', { timeout: 120_000 }, async () => {
  const { store, product } = await bund();
  const americano = product('美式咖啡');
  const consumer = await consumerPhone(100);
  const counter = await staffConsole(CASHIER);
  try {
    const page = consumer.page;
    assert.equal((await page.goto(`${baseUrl}/stores/${store.id}`))?.status(), 200);
    await clickAndWait(page, '[data-test=pickup-link]');
    await page.locator('[data-test=pickup-form]').waitFor();
    // Slots of 15 minutes in the store's time (a slot on another day, near midnight, names
    // its date too).
    const slots = await page.locator('[data-test=pickup-slot] option').allTextContents();
    assert.ok(slots.length >= 1, 'a pickup time is offered');
    for (const s of slots.slice(1)) assert.match(s, /^(\d\d-\d\d )?\d\d:(00|15|30|45)$/);
    const row = page.locator(`[data-test=menu-item][data-product="${americano.id}"]`);
    await row.locator('[data-test=qty]').fill('2');
    await shot(page, 'orders-6-pickup-form');
    await clickAndWait(page, '[data-test=pickup-submit]');
    assert.match(new URL(page.url()).pathname, /^\/me\/orders\/ord_/, `ordering ended on ${page.url()}`);
    await page.locator('[data-test=order-code][data-kind="order.pickup_code"] svg').waitFor();
    // The same code after a reload (it is kept, not signed anew).
    const pickupCode = await page.locator('[data-test=order-code]').getAttribute('data-code');
    await page.reload();
    assert.equal(await page.locator('[data-test=order-code]').getAttribute('data-code'), pickupCode);
    const number = await text(page.locator('[data-test=pickup-number]'));
    assert.match(number, /^\d{6}$/);
    await page.locator('[data-test=order][data-live=yes]').waitFor(LIVE);
    await shot(page, 'orders-7-pickup-code');

    // The cashier types the pickup number at the counter.
    const c = counter.page;
    assert.equal((await c.goto(`${baseUrl}/console/counter?store_id=${store.id}`))?.status(), 200);
    await c.locator('[data-test=handover-code]').fill(number);
    await clickAndWait(c, '[data-test=handover-submit]');
    assert.equal(await text(c.locator('[data-test=handover-done] strong')), number);
    await shot(c, 'orders-8-counter-handover');

    // The consumer's page shows it completed, live.
    await page.locator('[data-test=order][data-status=completed]').waitFor(LIVE);
    await page.locator('[data-test=completed-message]').waitFor();
    // And it is in their orders.
    await page.goto(`${baseUrl}/me/orders`);
    assert.ok((await page.locator('[data-test=listed-order]').count()) >= 1);
  } finally {
    await Promise.all([consumer.context.close(), counter.context.close()]);
  }
});

test('scan-and-go: type barcodes, pay, show the exit pass; staff scan it and the page shows completed', { timeout: 120_000 }, async () => {
  const { store, product } = await bund();
  const water = product('瓶装矿泉水');
  const croissant = product('可颂');
  const consumer = await consumerPhone(100);
  try {
    const page = consumer.page;
    assert.equal((await page.goto(`${baseUrl}/stores/${store.id}`))?.status(), 200);
    await clickAndWait(page, '[data-test=scan-and-go-link]');
    await page.locator('[data-test=basket-empty]').waitFor();
    // A barcode that is not a barcode: a clear refusal.
    await page.locator('[data-test=barcode]').fill('12345');
    await clickAndWait(page, '[data-test=scan-add]');
    await page.locator('[data-test=error]').waitFor();
    for (const code of [water.barcode, croissant.barcode, water.barcode]) {
      assert.match(code ?? '', /^\d{13}$/);
      await page.locator('[data-test=barcode]').fill(code);
      await clickAndWait(page, '[data-test=scan-add]');
    }
    assert.equal(await page.locator('[data-test=basket] [data-test=order-line]').count(), 3);
    // 5 + 15 + 5 = ¥25.00
    assert.equal(await text(page.locator('[data-test=order-total]')), '¥25.00');
    await shot(page, 'orders-9-scan-basket');
    await clickAndWait(page, '[data-test=scan-pay]');
    const pass = page.locator('[data-test=order-code][data-kind="order.exit_pass"]');
    await pass.locator('svg').waitFor();
    await page.locator('[data-test=order][data-live=yes]').waitFor(LIVE);
    await shot(page, 'orders-10-exit-pass');

    // Staff at the door scan the exit pass.
    const payload = await pass.getAttribute('data-code');
    const token = await staffToken(CASHIER);
    const scanned = await api('/v1/scan', { token, body: { payload, store_id: store.id } });
    assert.equal(scanned.status, 200, JSON.stringify(scanned.body));
    assert.equal(scanned.body.kind, 'exit_pass');
    const again = await api('/v1/scan', { token, body: { payload, store_id: store.id } });
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'code_used');
    await page.locator('[data-test=order][data-status=completed]').waitFor(LIVE);
    await shot(page, 'orders-11-exit-done');
  } finally {
    await consumer.context.close();
  }
});
