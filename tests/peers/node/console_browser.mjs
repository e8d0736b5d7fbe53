// Drives Warden's operator console in headless Chromium (playwright-core) for Warden's tests.
//
//   node console_browser.mjs <plan.json>
//
// plan.json: { console: "http://127.0.0.1:PORT/console/", user: "olivia", out: DIR, profile: DIR,
//              hostileMarker: "..." }
//
// The test and this script take turns: the script prints one JSON object per line on stdout
// ({"at": "step", ...}) and, where the test must act first (make an agent call, change a server),
// prints {"at": "...", "wait": true} and reads one line from stdin before going on. Screenshots
// go to plan.out. The script observes and acts; the test decides what is right.

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const turn = async (at, extra = {}) => { say({ at, wait: true, ...extra }); await lines.next(); };
const T = 20000;

const context = await chromium.launchPersistentContext(plan.profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 860 },
});
const observed = { consoleErrors: [], pageErrors: [], cspViolations: [], foreignRequests: [], navigations: 0, dialogs: [],
  failedResponses: [] };
const origin = new URL(plan.console).origin;
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') observed.consoleErrors.push(m.text()); });
page.on('pageerror', (e) => observed.pageErrors.push(String(e)));
page.on('dialog', (d) => { observed.dialogs.push(d.message()); d.dismiss(); });
page.on('request', (r) => {
  const u = new URL(r.url());
  if (u.origin !== origin && !u.pathname.startsWith('/authorize')) observed.foreignRequests.push(r.url());
});
page.on('response', (r) => { if (r.status() >= 400) observed.failedResponses.push(`${r.status()} ${r.url()}`); });
page.on('framenavigated', (f) => { if (f === page.mainFrame()) observed.navigations += 1; });
// A Content-Security-Policy violation is reported to the page as an event: count them.
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI);
  });
});
const id = (t) => page.locator(`[data-testid="${t}"]`);
const shot = async (name) => page.screenshot({ path: `${plan.out}/${name}.png`, fullPage: true });
const csp = async () => observed.cspViolations.push(...(await page.evaluate(() => window.__csp || [])));

try {
  // Sign in through the identity provider's own login form.
  await page.goto(plan.console);
  await id('signin-panel').waitFor({ state: 'visible', timeout: T });
  await shot('signin');
  await id('signin-oidc').click();
  await page.locator('#user').waitFor({ timeout: T });
  await page.fill('#user', plan.user);
  await page.click('#signin');
  await page.waitForURL(/\/console\/(#.*)?$/, { timeout: T });
  await id('operator').filter({ hasText: plan.user }).waitFor({ timeout: T });
  await page.locator('[data-testid="live-status"]', { hasText: 'live' }).waitFor({ timeout: T });
  say({ at: 'signed-in', operator: await id('operator').textContent() });

  // A held call appears without a reload; it is shown inert; it is approved.
  const before = observed.navigations;
  await turn('inbox-open');
  const card = id('approval-card').first();
  await card.waitFor({ timeout: T });
  const args = await card.locator('[data-testid="approval-args"]').textContent();
  const imgs = await card.locator('img').count();
  const pwned = await page.evaluate(() => window.__pwned === 1);
  await shot('approvals');
  say({
    at: 'held-call-shown', reloaded: observed.navigations !== before, id: await card.getAttribute('data-id'),
    tool: await card.locator('[data-testid="approval-tool"]').textContent(),
    caller: await card.locator('[data-testid="approval-caller"]').textContent(),
    reasons: await card.locator('[data-testid="approval-reasons"]').textContent(),
    args, imagesInCard: imgs, scriptRan: pwned, pendingBadge: await id('pending-count').textContent(),
  });
  await card.locator('[data-testid="approval-reason-input"]').fill('checked with the note owner');
  await card.locator('[data-testid="approve"]').click();
  await card.waitFor({ state: 'detached', timeout: T });
  say({ at: 'approved' });

  // Another held call is denied.
  await turn('deny-ready');
  const second = id('approval-card').first();
  await second.waitFor({ timeout: T });
  const secondId = await second.getAttribute('data-id');
  await second.locator('[data-testid="approval-reason-input"]').fill('not during the freeze');
  await second.locator('[data-testid="deny"]').click();
  await second.waitFor({ state: 'detached', timeout: T });
  const past = page.locator(`[data-testid="approval-history-row"][data-id="${secondId}"]`);
  await past.waitFor({ timeout: T });
  // The operator's reason comes from the decision's audit row; the list is fetched again as the
  // stream reports changes.
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.includes('freeze'),
    `[data-testid="approval-history-row"][data-id="${secondId}"]`, { timeout: 8000 }).catch(() => {});
  say({ at: 'denied', id: secondId, status: await past.getAttribute('data-status'), history: await past.textContent() });

  // A drifted definition is accepted from its diff; a quarantined result is released.
  await turn('reviews-ready');
  await id('nav-reviews').click();
  const def = page.locator('[data-testid="definition-card"][data-server="rug"]').first();
  await def.waitFor({ timeout: T });
  const oldSide = await def.locator('[data-testid="diff-old"]').textContent();
  const newSide = await def.locator('[data-testid="diff-new"]').textContent();
  const q = id('quarantine-card').first();
  await q.waitFor({ timeout: T });
  await q.locator('[data-testid="quarantine-show"]').click();
  await q.locator('[data-testid="quarantine-content"]').waitFor({ state: 'visible', timeout: T });
  const quarantined = await q.locator('[data-testid="quarantine-content"]').textContent();
  await shot('reviews');
  say({ at: 'reviews-shown', name: await def.getAttribute('data-name'), oldSide, newSide, quarantined,
    quarantineId: await q.getAttribute('data-id') });
  await def.locator('[data-testid="accept-definition"]').click();
  await def.waitFor({ state: 'detached', timeout: T });
  await q.locator('[data-testid="release"]').click();
  await q.waitFor({ state: 'detached', timeout: T });
  say({ at: 'reviewed' });

  // A server is contained from the inventory, after a confirmation naming what stops.
  await turn('inventory-ready');
  await id('nav-inventory').click();
  const row = page.locator('[data-testid="server-row"][data-server="demo"]');
  await row.waitFor({ timeout: T });
  const tools = await page.locator('[data-testid="tool-row"][data-server="demo"]').count();
  await shot('inventory');
  await row.locator('[data-testid="contain"]').click();
  await id('contain-dialog').waitFor({ state: 'visible', timeout: T });
  const confirmation = await id('contain-dialog').textContent();
  await shot('inventory-contain');
  await id('contain-reason').fill('suspected exfiltration');
  await id('contain-confirm').click();
  await page.locator('[data-testid="server-row"][data-server="demo"][data-state="contained"]').waitFor({ timeout: T });
  say({ at: 'contained', tools, confirmation });

  // The audit log is filtered; a row opens; the chain's state is shown.
  await turn('audit-ready');
  await id('nav-audit').click();
  await id('audit-row').first().waitFor({ timeout: T });
  await page.locator('[data-testid="chain-status"]', { hasText: /verified|rows/ }).waitFor({ timeout: T });
  await id('audit-filter-principal').fill(plan.principal);
  await id('audit-filter-decision').selectOption('DENY');
  await id('audit-apply').click();
  await page.waitForFunction((p) => {
    const rows = [...document.querySelectorAll('[data-testid="audit-row"]')];
    return rows.length > 0 && rows.every((r) => r.textContent.includes(p));
  }, plan.principal, { timeout: T });
  const filtered = await page.$$eval('[data-testid="audit-row"]', (rows) => rows.map((r) => r.textContent));
  await id('audit-row').first().click();
  await id('audit-detail').first().waitFor({ timeout: T });
  await page.waitForFunction(() => !document.querySelector('[data-testid="audit-detail"]').textContent.includes('Loading'), null, { timeout: T });
  const detail = await id('audit-detail').first().textContent();
  const exportHref = await id('audit-export').getAttribute('href');
  const chain = await id('chain-status').textContent();
  await shot('audit');
  say({ at: 'audit-filtered', filtered, detail, exportHref, chain });

  // The gates, each with its chart.
  await id('nav-gates').click();
  await id('gate-card').first().waitFor({ timeout: T });
  const gates = await page.$$eval('[data-testid="gate-card"]', (cards) => cards.map((c) => ({
    name: c.getAttribute('data-gate'), tripped: c.getAttribute('data-tripped'),
    chart: Boolean(c.querySelector('svg[data-testid="gate-chart"] polyline, svg[data-testid="gate-chart"] path')),
  })));
  await shot('gates');
  say({ at: 'gates', gates });

  // Every page at phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  const widths = {};
  for (const p of ['approvals', 'reviews', 'inventory', 'audit', 'gates']) {
    await id(`nav-${p}`).click();
    await page.waitForTimeout(400);
    widths[p] = await page.evaluate(() => document.documentElement.scrollWidth);
    await shot(`${p}-phone`);
  }
  await csp();
  say({ at: 'phone', widths });
  say({ at: 'observed', ...observed, scriptElements: await page.$$eval('script', (s) => s.map((x) => x.getAttribute('src'))) });
} catch (e) {
  await shot('failure').catch(() => {});
  await csp().catch(() => {});
  say({ at: 'error', message: String(e && e.stack || e), observed });
} finally {
  await context.close();
}
