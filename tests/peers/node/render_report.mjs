// Renders a `warden report` HTML file in headless Chromium (playwright-core) for Warden's tests.
//
//   node render_report.mjs <report.html> <screenshot.png> <user-data-dir>
//
// Prints one JSON object: { consoleErrors, pageErrors, requests, boxes: {id: {width, height}},
// matrix: [[header...], [cells...], ...], paintedPixels, totalPixels, scriptElements }.
// The test decides what is right; this only observes.

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [file, shot, profile] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  // Without the background-networking flags Chromium waits on a closed network.
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1400, height: 1000 },
});
const out = { consoleErrors: [], pageErrors: [], requests: [], boxes: {} };
try {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  const url = pathToFileURL(file).href;
  // Anything the page asks for besides itself is recorded: the report must fetch nothing.
  page.on('request', (r) => { if (r.url() !== url) out.requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  for (const id of ['architecture-diagram', 'matrix']) {
    const el = page.locator(`#${id}`);
    const visible = await el.isVisible();
    const box = await el.boundingBox();
    out.boxes[id] = { visible, width: box?.width ?? 0, height: box?.height ?? 0 };
  }
  out.scriptElements = await page.locator('script').count();
  out.matrix = await page.$$eval('#matrix tr', (rows) =>
    rows.map((r) => Array.from(r.querySelectorAll('th,td')).map((c) => c.textContent)));
  out.overScoped = await page.$$eval('#scopes li', (items) => items.map((i) => i.textContent));
  await page.screenshot({ path: shot, fullPage: false });

  // Decode the screenshot in a blank page and count pixels that are not the background.
  const png = readFileSync(shot).toString('base64');
  const blank = await context.newPage();
  const counts = await blank.evaluate(async (data) => {
    const img = new Image();
    img.src = `data:image/png;base64,${data}`;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, img.width, img.height).data;
    let painted = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240) painted++;
    }
    return { painted, total: px.length / 4 };
  }, png);
  out.paintedPixels = counts.painted;
  out.totalPixels = counts.total;
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
