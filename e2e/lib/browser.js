// Helpers for the o2o browser tests: playwright-core driving Debian's chromium,
// run by node's built-in test runner (node:test). See ../README.md.
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

if (!process.env.O2O_BASE_URL) {
  throw new Error(
    'O2O_BASE_URL is not set: run `scripts/test e2e`, or start `o2o serve --demo` and set O2O_BASE_URL=http://127.0.0.1:PORT',
  );
}

/** Where the server under test answers, without a trailing slash. */
export const baseUrl = process.env.O2O_BASE_URL.replace(/\/+$/, '');

/** Directory the screenshots are written to (gitignored). */
export const screenshotDir = fileURLToPath(new URL('../screenshots/', import.meta.url));

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Launch headless chromium (CHROMIUM_PATH, default /usr/bin/chromium). */
export async function launch(options = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    ...options,
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
  });
}

/** A browser context that looks like a phone: 390x844, touch, mobile. */
export async function newPhone(browser, { locale = 'zh-CN', ...options } = {}) {
  return browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale,
    ...options,
  });
}

/** A desktop browser context: 1280x800. */
export async function newDesktop(browser, { locale = 'zh-CN', ...options } = {}) {
  return browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale,
    ...options,
  });
}

/** Save a full-page PNG to e2e/screenshots/<name>.png; returns its path. */
export async function shot(page, name) {
  const safe = String(name).replace(/[^A-Za-z0-9._-]+/g, '-');
  await mkdir(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${safe}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Call the JSON API: api('/api/...', { method, body, token, headers }).
 * The body is sent as JSON; method defaults to POST with a body, GET without.
 * Returns { status, body, headers }, body parsed as JSON when it is JSON, else text
 * (null when empty).
 */
export async function api(urlPath, { method, body, token, headers = {} } = {}) {
  const init = {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { accept: 'application/json', ...headers },
    redirect: 'manual',
  };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${baseUrl}${urlPath}`, init);
  const text = await res.text();
  let parsed = text === '' ? null : text;
  if (text !== '' && /\bjson\b/i.test(res.headers.get('content-type') ?? '')) {
    parsed = JSON.parse(text);
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Click something that navigates (a form's submit button, a link) and wait until the page it
 * leads to has loaded, redirects followed. Works when the new page has the same URL as the old
 * one (a POST that redirects back). Returns the main response of the last navigation (or null).
 */
export async function clickAndWait(page, selector, { timeout = 15_000 } = {}) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout }),
    page.click(selector, { timeout }),
  ]);
  return response;
}
