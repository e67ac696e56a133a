// Drives the service map in headless Chromium (the system's, via
// playwright-core: no browser download): waits until the page shows every
// pod given and a dropped edge, saves a screenshot, then filters by a
// namespace and checks every edge left touches it. Prints what it saw as
// JSON for the Go test to judge.
//
//   node servicemap.mjs URL SCREENSHOT '["ns/pod", ...]' NAMESPACE
import { chromium } from 'playwright-core';

const [url, screenshot, podsJSON, namespace] = process.argv.slice(2);
const pods = JSON.parse(podsJSON);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction((want) => {
    const m = window.kestrelServiceMap;
    if (!m) return false;
    const have = new Set(m.nodes().map((n) => n.namespace + '/' + n.pod));
    return want.every((p) => have.has(p)) && m.edges().some((e) => e.verdict === 'DROPPED');
  }, pods, { timeout: 60000, polling: 250 });
  await page.waitForTimeout(1500); // the layout settles before the picture
  await page.screenshot({ path: screenshot });
  const all = await page.evaluate(() => ({ nodes: window.kestrelServiceMap.nodes(), edges: window.kestrelServiceMap.edges() }));

  await page.waitForFunction((ns) => [...document.querySelectorAll('#namespace option')].some((o) => o.value === ns), namespace, { timeout: 30000 });
  await page.selectOption('#namespace', namespace);
  await page.waitForFunction(() => window.kestrelServiceMap.edges().length > 0, null, { timeout: 30000 });
  await page.waitForTimeout(1000); // the backlog has arrived
  const filtered = await page.evaluate(() => ({ nodes: window.kestrelServiceMap.nodes(), edges: window.kestrelServiceMap.edges() }));
  console.log(JSON.stringify({ all, filtered, errors }));
} finally {
  await browser.close();
}
