// Smoke test of the harness itself: the server answers and the browser renders.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, baseUrl, launch, newPhone, shot } from '../lib/browser.js';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('GET /healthz answers 200 in a phone browser', { timeout: 60_000 }, async () => {
  const context = await newPhone(browser);
  try {
    const page = await context.newPage();
    const response = await page.goto(`${baseUrl}/healthz`);
    assert.ok(response, 'no response for /healthz');
    assert.equal(response.status(), 200);
    await shot(page, 'smoke-healthz-phone');
  } finally {
    await context.close();
  }
});

test('api() helper reaches /healthz', { timeout: 30_000 }, async () => {
  const { status } = await api('/healthz');
  assert.equal(status, 200);
});
