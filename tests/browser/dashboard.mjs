// End-to-end check of the leakwatch dashboard in a real browser (Debian's Chromium, driven
// by playwright-core). Run by crates/testkit/tests/dashboard.rs against a real agent that
// watches a real leaking process ("grower", thread group Leaky-#):
//
//   node tests/browser/dashboard.mjs http://127.0.0.1:PORT OUTDIR
//
// Checks the overview shows the finding and charts, follows the link to the target page,
// checks the SVG chart paths (threads, including Leaky-#) and the forecast, zooms by
// dragging across a chart, checks that no request left the agent, and saves screenshots
// (OUTDIR/overview.png, OUTDIR/target.png). Exit 0 when every check passed, 1 with the
// reason otherwise, 2 for bad arguments or a missing browser.

import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, outdir] = process.argv.slice(2);
if (!base || !outdir) {
  console.error('usage: node dashboard.mjs AGENT_URL OUTDIR');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`no Chromium at ${executablePath}: apt-get install chromium (scripts/test.sh does), or set CHROMIUM`);
  process.exit(2);
}
mkdirSync(outdir, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'leakwatch-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const foreign = [];
const pageErrors = [];
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith('data:') && !url.startsWith('about:')) foreign.push(url);
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));

  // Overview: the leaking target first, its finding and its sparklines.
  const response = await page.goto(`${base}/`, { waitUntil: 'load' });
  check(response && response.status() === 200, `GET / answered ${response && response.status()}`);
  const firstRow = page.locator('table.targets tr').nth(1);
  await firstRow.waitFor({ state: 'visible', timeout: 10_000 });
  const firstText = await firstRow.innerText();
  check(firstText.includes('grower'), `the riskiest target is listed first, got: ${firstText.slice(0, 200)}`);
  const finding = page.locator('table.targets .finding', { hasText: 'Leaky-#' }).first();
  check(await finding.isVisible(), 'the Leaky-# finding is visible on the overview');
  const findingText = await finding.innerText();
  check(/limit in ~/.test(findingText), `the finding shows a forecast: ${findingText}`);
  const spark = firstRow.locator('svg.spark path').first();
  check(await spark.isVisible(), 'a sparkline is drawn for grower');
  const sparkBox = await spark.boundingBox();
  check(sparkBox && sparkBox.width > 20, `the sparkline has width: ${JSON.stringify(sparkBox)}`);
  await page.screenshot({ path: join(outdir, 'overview.png') });

  // Target page, through the link.
  await Promise.all([
    page.waitForURL(/\/target\/grower/),
    firstRow.locator('a[href^="target/grower"]').click(),
  ]);
  const threads = page.locator('svg#chart-threads');
  await threads.waitFor({ state: 'visible', timeout: 10_000 });
  const labels = await threads
    .locator('path.series')
    .evaluateAll((paths) => paths.map((p) => [p.dataset.label, p.getAttribute('d')]));
  const leaky = labels.find(([label]) => label === 'threads{Leaky-#}');
  check(leaky, `the threads chart has a Leaky-# line; lines: ${labels.map(([l]) => l).join(', ')}`);
  const points = (leaky[1].match(/[ML]/g) || []).length;
  check(points >= 2, `the Leaky-# line has points (${points})`);
  check(labels.some(([label]) => label === 'threads{Base-#}'), 'the steady Base-# group is drawn too');
  const box = await threads.locator('path.series[data-label="threads{Leaky-#}"]').boundingBox();
  check(box && box.width > 50 && box.height > 5, `the Leaky-# line rises across the chart: ${JSON.stringify(box)}`);
  check((await threads.locator('path.forecast').count()) >= 1, 'the forecast is drawn on the threads chart');
  check(await page.locator('table.findings', { hasText: 'Leaky-#' }).isVisible(), 'the findings table names Leaky-#');
  // (A flat line has no height, so Playwright would call it invisible: count the paths.)
  for (const id of ['fds', 'memory']) {
    check(await page.locator(`svg#chart-${id}`).isVisible(), `the ${id} chart is shown`);
    check((await page.locator(`svg#chart-${id} path.series`).count()) >= 1, `the ${id} chart has lines`);
  }
  await page.screenshot({ path: join(outdir, 'target.png') });

  // Drag across the middle of the threads chart: the page reloads with that range.
  const chartBox = await threads.boundingBox();
  const y = chartBox.y + chartBox.height * 0.35;
  await page.mouse.move(chartBox.x + chartBox.width * 0.3, y);
  await page.mouse.down();
  await page.mouse.move(chartBox.x + chartBox.width * 0.6, y, { steps: 5 });
  await Promise.all([page.waitForURL(/from_ms=\d+&to_ms=\d+/), page.mouse.up()]);
  const zoomed = new URL(page.url());
  const from = Number(zoomed.searchParams.get('from_ms'));
  const to = Number(zoomed.searchParams.get('to_ms'));
  check(to > from, `the zoomed range is ordered: ${from}..${to}`);
  await page.locator('svg#chart-threads').waitFor({ state: 'visible', timeout: 10_000 });
  const t0 = Number(await page.locator('svg#chart-threads').getAttribute('data-t0'));
  check(t0 === from, `the zoomed chart starts at from_ms (${t0} vs ${from})`);

  check(pageErrors.length === 0, `no script errors: ${pageErrors.join('; ')}`);
  check(foreign.length === 0, `no request left the agent: ${foreign.join(', ')}`);
  console.log(JSON.stringify({ ok: true, leaky_points: points, lines: labels.length, zoom: [from, to] }));
} catch (error) {
  failed = true;
  console.error(String(error && error.stack ? error.stack : error));
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
