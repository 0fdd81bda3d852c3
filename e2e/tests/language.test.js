// Page language: from Accept-Language (the browser's locale) by default, zh-CN when there is no
// hint, and the switch in the header sets a cookie that later pages honour.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, clickAndWait, launch, newPhone, shot } from '../lib/browser.js';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const htmlLang = (page) => page.locator('html').getAttribute('lang');
const text = async (page, selector) => (await page.locator(selector).innerText()).trim();

test('an en-US phone sees English; the switch gives Chinese, which sticks', { timeout: 60_000 }, async () => {
  const context = await newPhone(browser, { locale: 'en-US' });
  try {
    const page = await context.newPage();

    await page.goto(`${baseUrl}/`);
    await page.locator('[data-test=lang-switch]').waitFor();
    assert.equal(await htmlLang(page), 'en');
    assert.equal(await text(page, '[data-test=lang-switch]'), '中文');
    assert.equal(await text(page, '[data-test=nav-login]'), 'Log in');
    await page.getByRole('heading', { name: 'Stores near you' }).waitFor();
    await shot(page, 'language-1-home-en');

    // Switch: back on the home page, in Chinese.
    const href = await page.locator('[data-test=lang-switch]').getAttribute('href');
    assert.match(href, /^\/lang\/zh-CN\?next=(\/|%2F)$/);
    await clickAndWait(page, '[data-test=lang-switch]');
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await htmlLang(page), 'zh-CN');
    assert.equal(await text(page, '[data-test=lang-switch]'), 'English');
    assert.equal(await text(page, '[data-test=nav-login]'), '登录');
    await page.getByRole('heading', { name: '附近门店' }).waitFor();
    await shot(page, 'language-2-home-zh');

    // The choice persists on the next page, although the browser still asks for English.
    await clickAndWait(page, '[data-test=nav-login]');
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.locator('[data-test=phone]').waitFor();
    assert.equal(await htmlLang(page), 'zh-CN');
    assert.equal(await text(page, '[data-test=lang-switch]'), 'English');
    await page.getByRole('heading', { name: '手机号登录' }).waitFor();
    await shot(page, 'language-3-login-zh');

    // And switching back returns to the page it came from, in English.
    await clickAndWait(page, '[data-test=lang-switch]');
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal(await htmlLang(page), 'en');
    assert.equal(await text(page, '[data-test=lang-switch]'), '中文');
    await shot(page, 'language-4-login-en');
  } finally {
    await context.close();
  }
});

test('a zh-CN phone sees Chinese by default', { timeout: 60_000 }, async () => {
  const context = await newPhone(browser, { locale: 'zh-CN' });
  try {
    const page = await context.newPage();
    await page.goto(`${baseUrl}/`);
    await page.locator('[data-test=lang-switch]').waitFor();
    assert.equal(await htmlLang(page), 'zh-CN');
    assert.equal(await text(page, '[data-test=lang-switch]'), 'English');
    assert.equal(await text(page, '[data-test=nav-login]'), '登录');
    await page.getByRole('heading', { name: '附近门店' }).waitFor();
    await shot(page, 'language-zh-1-home');

    await page.goto(`${baseUrl}/login`);
    await page.locator('[data-test=phone]').waitFor();
    assert.equal(await htmlLang(page), 'zh-CN');
    await shot(page, 'language-zh-2-login');
  } finally {
    await context.close();
  }
});
