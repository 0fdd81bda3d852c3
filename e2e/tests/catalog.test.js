// The demo café's menu on a phone: scanning a table code of the Jing'an store shows the menu with
// Chinese names, prices in yuan, the photos the demo drew and a sold-out mark; then the store
// manager changes a price and uploads a photo in the console, and the phone sees both on its
// next load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, clickAndWait, launch, newDesktop, newPhone, shot } from '../lib/browser.js';

const DEMO_PASSWORD = 'o2o-demo-2026';
const OWNER = 'owner@lotus.demo';
const MANAGER = 'manager@lotus.demo';
const MENU_NAMES = ['美式咖啡', '拿铁', '燕麦拿铁', '抹茶拿铁', '可颂', '芝士蛋糕'];

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function staffToken(email) {
  const res = await api('/v1/sessions', { body: { email, password: DEMO_PASSWORD } });
  assert.equal(res.status, 201, `login ${email}: ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** The Jing'an store, a table code for its first table, and its menu (public API). */
async function jinganTable() {
  const token = await staffToken(OWNER);
  const me = await api('/v1/me', { token });
  const stores = await api(`/v1/merchants/${me.body.merchant_id}/stores`, { token });
  const store = stores.body.data.find((s) => s.name.includes('静安寺'));
  assert.ok(store, `the demo has a Jing'an store: ${JSON.stringify(stores.body)}`);
  const tables = await api(`/v1/stores/${store.id}/tables`, { token });
  const table = tables.body.data[0];
  const code = await api('/v1/qr-codes', { token, body: { kind: 'table', store_id: store.id, table_id: table.id } });
  assert.equal(code.status, 201, JSON.stringify(code.body));
  const menu = await api(`/v1/stores/${store.id}/menu`);
  assert.equal(menu.status, 200, JSON.stringify(menu.body));
  const products = menu.body.sections.flatMap((s) => s.products);
  return { store, table, url: code.body.url, products };
}

test('a table code opens the demo menu with Chinese names, photos and sold-out marks', async () => {
  const { url, products } = await jinganTable();
  const phone = await newPhone(browser);
  const page = await phone.newPage();
  try {
    const res = await page.goto(url);
    assert.equal(res?.status(), 200);
    await page.locator('[data-test=menu]').waitFor();
    const names = await page.locator('[data-test=menu-name]').allTextContents();
    for (const name of MENU_NAMES) {
      assert.ok(names.includes(name), `${name} is on the menu: ${names.join(', ')}`);
    }
    const latte = products.find((p) => p.name_zh === '拿铁');
    const latteRow = page.locator(`[data-test=menu-item][data-product="${latte.id}"]`);
    assert.equal((await latteRow.locator('[data-test=menu-price]').textContent()).trim(), '¥28.00');
    assert.match(await latteRow.textContent(), /大杯 \+¥3\.00/);
    assert.match(await latteRow.textContent(), /燕麦奶 \+¥4\.00/);
    // Every photo is a real image the server made (loaded, not broken).
    const photos = page.locator('[data-test=menu-photo]');
    assert.ok((await photos.count()) >= MENU_NAMES.length);
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-test=menu-photo]')].every((img) => img.complete && img.naturalWidth > 0),
    );
    const widths = await photos.evaluateAll((imgs) => imgs.map((img) => img.naturalWidth));
    assert.ok(widths.every((w) => w === 160), `160 px photos: ${widths}`);
    // The muffins are sold out in this store, and marked so.
    const muffin = products.find((p) => p.name_zh === '蓝莓玛芬');
    assert.equal(muffin.sold_out, true);
    const muffinRow = page.locator(`[data-test=menu-item][data-product="${muffin.id}"]`);
    assert.equal(await muffinRow.getAttribute('data-sold-out'), 'true');
    assert.equal((await muffinRow.locator('[data-test=sold-out]').textContent()).trim(), '已售罄');
    await shot(page, 'catalog-1-table-menu');
  } finally {
    await phone.close();
  }
});

test('a manager changes a price and a photo in the console and the table menu shows them', async () => {
  const { store, url, products } = await jinganTable();
  const americano = products.find((p) => p.name_zh === '美式咖啡');
  assert.ok(americano, 'the demo sells an Americano');
  const newFen = americano.price + 100;
  const newYuan = (newFen / 100).toFixed(2);

  const desktop = await newDesktop(browser);
  const console = await desktop.newPage();
  const phone = await newPhone(browser);
  const page = await phone.newPage();
  try {
    await console.goto(`${baseUrl}/console/login`);
    await console.locator('[data-test=email]').fill(MANAGER);
    await console.locator('[data-test=password]').fill(DEMO_PASSWORD);
    await clickAndWait(console, '[data-test=login-submit]');
    await clickAndWait(console, '[data-test=nav-catalog]');
    await console.goto(`${baseUrl}/console/catalog?store=${store.id}`);
    const row = console.locator(`[data-test=product-item][data-product="${americano.id}"]`);
    await row.waitFor();
    assert.equal((await row.locator('[data-test=product-name]').textContent()).trim(), '美式咖啡');
    await row.locator('[data-test=price-input]').fill(newYuan);
    await shot(console, 'catalog-2-console-edit');
    await clickAndWait(console, `[data-test=product-item][data-product="${americano.id}"] [data-test=price-submit]`);
    assert.equal(await console.locator('[data-test=error]').count(), 0);
    const saved = console.locator(`[data-test=product-item][data-product="${americano.id}"] [data-test=product-price]`);
    assert.equal((await saved.textContent()).trim(), `¥${newYuan}`);

    // A text file named .png is refused with a message; a real photo replaces the old one.
    const photoForm = `[data-test=product-item][data-product="${americano.id}"]`;
    await console.locator(`${photoForm} [data-test=photo-input]`).setInputFiles({
      name: 'menu.png', mimeType: 'image/png', buffer: Buffer.from('not an image at all\n'),
    });
    await console.click(`${photoForm} [data-test=photo-submit]`);
    await console.locator(`${photoForm} [data-photo-error]:not([hidden])`).waitFor();
    const oldPhoto = await console.locator(`${photoForm} [data-test=product-photo]`).getAttribute('src');
    const latte = products.find((p) => p.name_zh === '拿铁');
    const jpeg = Buffer.from(await (await fetch(`${baseUrl}${latte.photo.large}`)).arrayBuffer());
    await console.locator(`${photoForm} [data-test=photo-input]`).setInputFiles({
      name: 'latte.jpg', mimeType: 'image/jpeg', buffer: jpeg,
    });
    await Promise.all([
      console.waitForNavigation({ waitUntil: 'load' }),
      console.click(`${photoForm} [data-test=photo-submit]`),
    ]);
    const newPhoto = await console.locator(`${photoForm} [data-test=product-photo]`).getAttribute('src');
    assert.notEqual(newPhoto, oldPhoto, 'the uploaded photo has a new URL');

    const res = await page.goto(url);
    assert.equal(res?.status(), 200);
    const shown = page.locator(`[data-test=menu-item][data-product="${americano.id}"] [data-test=menu-photo]`);
    assert.equal(await shown.getAttribute('src'), newPhoto);
    const price = page.locator(`[data-test=menu-item][data-product="${americano.id}"] [data-test=menu-price]`);
    assert.equal((await price.textContent()).trim(), `¥${newYuan}`);
    await shot(page, 'catalog-3-menu-after-edit');
  } finally {
    await desktop.close();
    await phone.close();
  }
});
