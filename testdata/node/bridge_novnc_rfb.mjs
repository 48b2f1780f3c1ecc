// Runs noVNC's RFB client in headless Chromium (driven by playwright-core)
// against a page served by a WebSocket-to-TCP bridge, and prints the
// client's events as JSON: connect, the desktop name, then a clean
// disconnect after rfb.disconnect().
// Usage: node bridge_novnc_rfb.mjs CHROMIUM_PATH PAGE_URL
import { chromium } from 'playwright-core';

const [executablePath, pageURL] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  // Playwright gives the browser a fresh temporary profile of its own.
});
let result = { events: [], console: [] };
try {
  // https:// pages in the tests use a throwaway self-signed certificate.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on('console', (m) => result.console.push(m.text()));
  page.on('pageerror', (e) => result.console.push('pageerror: ' + e.message));
  await page.goto(pageURL);
  await page.waitForFunction(() => window.events && window.events.some((e) => e.startsWith('name:')) &&
    window.events.includes('connect'), null, { timeout: 20000 });
  await page.evaluate(() => window.rfb.disconnect());
  await page.waitForFunction(() => window.events.some((e) => e.startsWith('disconnect')), null, { timeout: 10000 });
  result.events = await page.evaluate(() => window.events);
} catch (e) {
  result.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
