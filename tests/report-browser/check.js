#!/usr/bin/env node
/*
 * Checks elmon's HTML report in a real browser (Debian's chromium, driven
 * by playwright-core) and speedscope files against the format's published
 * schema (ajv).  Run by tests/report_browser.sh; each mode exits 1 with
 * the failed checks listed, 0 when all hold.
 *
 *   check.js run PAGE --culprit NAME... [--screenshot PNG]
 *       a real run: renders, culprits in the flame graph, timeline axes and
 *       span markers, frame click zooms, search highlights, table sorts and
 *       links to stacks, no console error, no network request, screenshot
 *       not blank
 *   check.js empty PAGE          an empty run says so, without errors
 *   check.js many PAGE N         N loop threads: all listed, lanes on demand
 *   check.js hostile PAGE NAMES  NAMES (a JSON list) shown as text, never run
 *   check.js speedscope FILE SCHEMA
 */
'use strict';
const fs = require('fs');
const path = require('path');

const failures = [];
function check(ok, what) {
  if (ok) console.log('  ok   ' + what);
  else { console.log('  FAIL ' + what); failures.push(what); }
}
function done() {
  if (failures.length) {
    console.log(failures.length + ' check(s) failed');
    process.exit(1);
  }
  console.log('all checks hold');
}

const CHROMIUM = process.env.ELMON_CHROMIUM || '/usr/bin/chromium';

/* Opens PAGE from disk; every request other than the page itself is
 * recorded and refused, console errors and page errors are collected. */
async function open(file, opts) {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  const url = 'file://' + path.resolve(file);
  const requests = [], errors = [];
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    requests.push(u);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('requestfailed', (r) => { if (r.url() !== url && !requests.includes(r.url())) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load', timeout: (opts && opts.timeout) || 60000 });
  await page.waitForSelector('body[data-ready="1"]', { timeout: (opts && opts.timeout) || 60000 });
  return { browser, page, requests, errors };
}

/* Distinct colours in a PNG, counted by the browser itself. */
async function colours(browser, png) {
  const p = await browser.newPage();
  const n = await p.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, png.toString('base64'));
  await p.close();
  return n;
}

async function run(file, culprits, shot) {
  const { browser, page, requests, errors } = await open(file);
  const data = await page.evaluate(() => JSON.parse(document.getElementById('elmon-data').textContent));
  check(data.spans.length >= 2, 'the run has spans (' + data.spans.length + ')');

  const frames = await page.$$eval('#flame-svg svg.frame text', (ts) => ts.map((t) => t.textContent));
  for (const c of culprits)
    check(frames.some((f) => f.startsWith(c + ' ') || f === c), 'flame graph draws culprit ' + c + ' as SVG text');
  check(frames.includes('all'), 'flame graph has its root');

  const lanes = await page.$$('svg.lane');
  check(lanes.length >= 1, 'timeline has a lane (' + lanes.length + ')');
  const xt = await page.$$eval('svg.lane g.x-axis text', (t) => t.map((e) => e.textContent));
  const yt = await page.$$eval('svg.lane g.y-axis text', (t) => t.map((e) => e.textContent));
  check(xt.length >= 2, 'timeline x axis has ticks (' + xt.slice(0, 4).join(', ') + ')');
  check(yt.length >= 2 && yt.some((t) => / ms$| s$/.test(t)), 'timeline y axis has lag ticks (' + yt.join(', ') + ')');
  const markers = await page.$$eval('svg.lane rect.span', (r) => r.length);
  check(markers === data.spans.length, 'timeline marks every span (' + markers + ' of ' + data.spans.length + ')');
  const thr = await page.$$eval('svg.lane line.threshold', (l) => l.map((e) => e.getAttribute('class')));
  check(thr.some((c) => /warning/.test(c)) && thr.some((c) => /critical/.test(c)), 'timeline draws both thresholds');

  /* zoom and pan on the time axis */
  const before = await page.textContent('#tl-range');
  await page.click('#tl-zoom-in');
  await page.waitForTimeout(100);
  const after = await page.textContent('#tl-range');
  check(before !== after, 'zoom in changes the time range (' + before + ' -> ' + after + ')');
  const box = await (await page.$('svg.lane rect.plot-bg')).boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 200, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForTimeout(100);
  const panned = await page.textContent('#tl-range');
  check(panned !== after, 'dragging pans the time range (' + after + ' -> ' + panned + ')');
  await page.click('#tl-reset');

  /* click a frame: it fills the width */
  const W = Number(await page.getAttribute('#flame-svg', 'width'));
  const target = culprits[0];
  const sel = `#flame-svg svg.frame[data-name^="${target} "]`;
  const w0 = Number(await page.getAttribute(sel, 'width'));
  await page.click(sel, { position: { x: 2, y: 5 } });
  await page.waitForTimeout(100);
  const w1 = Number(await page.getAttribute(sel, 'width'));
  check(w0 < W - 1 && Math.abs(w1 - W) < 1, 'clicking ' + target + ' zooms it to the full width (' + w0.toFixed(0) + ' -> ' + w1.toFixed(0) + ' of ' + W + ')');
  await page.click('#flame-reset');

  /* the search highlights */
  await page.fill('#flame-search', culprits[1]);
  await page.waitForTimeout(100);
  const hits = await page.$$eval('#flame-svg svg.frame.match', (m) => m.map((e) => e.getAttribute('data-name')));
  check(hits.length >= 1 && hits.every((h) => h.toLowerCase().includes(culprits[1].toLowerCase())),
    'search for ' + culprits[1] + ' highlights ' + hits.length + ' frame(s), all matching');
  const nonHits = await page.$$eval('#flame-svg svg.frame:not(.match)', (m) => m.length);
  check(nonHits > 0, 'other frames stay unhighlighted');
  check(/^Matched: /.test(await page.textContent('#flame-matched')), 'the matched share is shown');
  await page.fill('#flame-search', '');

  /* the table: sortable, each row linked to its stack */
  const rows = await page.$$eval('#spans tbody tr', (r) => r.length);
  check(rows === data.spans.length, 'table lists every span (' + rows + ')');
  const durs = async () => page.$$eval('#spans tbody tr', (r) => r.map((e) => parseFloat(e.children[1].textContent)));
  const d0 = await durs();
  check(d0.every((v, i) => i === 0 || d0[i - 1] >= v), 'table starts sorted by duration, longest first');
  await page.click('#spans th[data-key="duration"]');
  const d1 = await durs();
  check(d1.every((v, i) => i === 0 || d1[i - 1] <= v) && d1[0] < d0[0], 'clicking the header sorts the other way');
  await page.click('#spans th[data-key="culprit"]');
  const cul = await page.$$eval('#spans tbody td.culprit', (t) => t.map((e) => e.textContent));
  check(cul.every((v, i) => i === 0 || cul[i - 1] <= v), 'sorting by culprit orders the culprits');
  const firstCulprit = cul[0];
  await page.click('#spans tbody tr >> nth=0');
  const stack = await page.textContent('#stack-text');
  check(stack.includes(firstCulprit.split(' ')[0]), 'a row shows its stack, with its culprit ' + firstCulprit.split(' ')[0]);
  await page.click('#stack-in-flame');
  const onPath = await page.$$eval('#flame-svg svg.frame.path', (m) => m.map((e) => e.getAttribute('data-name')));
  check(onPath.some((n) => n.startsWith(firstCulprit.split(' ')[0])), 'the stack is marked in the flame graph');
  await page.click('#flame-reset');
  await page.click('#spans th[data-key="duration"]');

  /* a span marker in the timeline selects its row */
  await page.click('svg.lane rect.span >> nth=0', { force: true });
  const selRows = await page.$$eval('#spans tbody tr.selected', (r) => r.length);
  check(selRows === 1, 'clicking a timeline marker selects its table row');

  if (shot) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: shot, fullPage: true });
  }
  const png = await page.screenshot({ fullPage: false });
  const n = await colours(browser, png);
  check(n >= 20, 'the screenshot is not blank (' + n + ' colours sampled)');
  check(errors.length === 0, 'no console error' + (errors.length ? ': ' + errors.join(' | ') : ''));
  check(requests.length === 0, 'no network request' + (requests.length ? ': ' + requests.join(' ') : ''));
  await browser.close();
}

async function empty(file) {
  const { browser, page, requests, errors } = await open(file);
  for (const id of ['#loops-empty', '#timeline-empty', '#flame-empty', '#spans-empty'])
    check(await page.$(id) !== null, 'empty run: ' + id + ' says so');
  check(/No event loop ran/.test(await page.textContent('#verdict-text')), 'empty run: the verdict says no loop ran');
  check(errors.length === 0, 'no console error' + (errors.length ? ': ' + errors.join(' | ') : ''));
  check(requests.length === 0, 'no network request');
  await browser.close();
}

async function many(file, n) {
  const t = Date.now();
  const { browser, page, requests, errors } = await open(file, { timeout: 120000 });
  console.log('  (page ready in ' + (Date.now() - t) + ' ms)');
  const data = await page.evaluate(() => JSON.parse(document.getElementById('elmon-data').textContent));
  check(data.loops.length === n, 'the page holds all ' + n + ' loop threads (' + data.loops.length + ')');
  const rows = await page.$$eval('#loops tbody tr', (r) => r.length);
  check(rows === Math.min(n, 500), 'loop table lists ' + rows + ' rows');
  const lanes0 = await page.$$eval('svg.lane', (l) => l.length);
  check(lanes0 === 20 && await page.$('#tl-more') !== null, 'timeline draws 20 lanes first and offers the rest (' + lanes0 + ')');
  await page.click('#tl-more');
  await page.waitForTimeout(200);
  const lanes1 = await page.$$eval('svg.lane', (l) => l.length);
  check(lanes1 === n, 'all ' + n + ' lanes after "show all" (' + lanes1 + ')');
  await page.click('#tl-zoom-in');
  await page.waitForTimeout(300);
  check(errors.length === 0, 'no console error' + (errors.length ? ': ' + errors.join(' | ') : ''));
  check(requests.length === 0, 'no network request');
  await browser.close();
}

async function hostile(file, namesFile) {
  const names = JSON.parse(fs.readFileSync(namesFile, 'utf8'));
  const { browser, page, requests, errors } = await open(file);
  check(await page.evaluate(() => window.__elmon_pwned === undefined), 'no injected script ran');
  check(await page.$$eval('script', (s) => s.length) === 2, 'the page has exactly its own two script elements');
  check(await page.$$eval('img, iframe, object, embed', (s) => s.length) === 0, 'no injected element');
  const text = await page.evaluate(() => document.body.innerText);
  const flame = await page.$$eval('#flame-svg svg.frame text', (ts) => ts.map((t) => t.textContent));
  const cells = await page.$$eval('td', (ts) => ts.map((t) => t.textContent));
  for (const n of names.filter((n) => !n.startsWith('fn:')))
    check(cells.includes(n), 'a table cell holds exactly ' + JSON.stringify(n));
  for (const n of names.filter((n) => n.startsWith('fn:')).map((n) => n.slice(3))) {
    check(flame.some((f) => f.startsWith(n)), 'flame graph text: ' + JSON.stringify(n));
    check(cells.some((c) => c.startsWith(n + ' (')), 'culprit cell: ' + JSON.stringify(n));
  }
  check(text.includes('<degraded>'), 'a status with markup shows as text');
  check(errors.length === 0, 'no console error' + (errors.length ? ': ' + errors.join(' | ') : ''));
  check(requests.length === 0, 'no network request' + (requests.length ? ': ' + requests.join(' ') : ''));
  await browser.close();
}

function speedscope(file, schemaFile) {
  const Ajv = require('ajv');
  const ajv = new Ajv({ strict: false, allErrors: true });
  const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  const ok = ajv.validate(schema, doc);
  check(ok, 'valid against the published speedscope schema' + (ok ? '' : ': ' + ajv.errorsText()));
  /* What the schema cannot say and speedscope's importer requires: each
   * profile's events in time order, closing the frame last opened. */
  const nFrames = doc.shared.frames.length;
  let nested = true, ordered = true, inRange = true, events = 0;
  for (const p of doc.profiles) {
    const open = [];
    let last = -Infinity;
    for (const e of p.events) {
      events++;
      if (e.at < last) ordered = false;
      last = e.at;
      if (!(e.frame >= 0 && e.frame < nFrames)) inRange = false;
      if (e.type === 'O') open.push(e.frame);
      else if (open.pop() !== e.frame) nested = false;
    }
    if (open.length) nested = false;
    if (p.endValue < last) ordered = false;
  }
  check(doc.profiles.length >= 1 && events > 0, doc.profiles.length + ' profile(s), ' + events + ' events');
  check(ordered, 'events of each profile in time order, within endValue');
  check(nested, 'every close matches the frame last opened, none left open');
  check(inRange, 'every event names a shared frame');
  return doc;
}

(async () => {
  const [mode, file, ...rest] = process.argv.slice(2);
  console.log(mode + ': ' + file);
  if (mode === 'run') {
    const culprits = [];
    let shot = null;
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--culprit') culprits.push(rest[++i]);
      else if (rest[i] === '--screenshot') shot = rest[++i];
    }
    await run(file, culprits, shot);
  } else if (mode === 'empty') {
    await empty(file);
  } else if (mode === 'many') {
    await many(file, Number(rest[0]));
  } else if (mode === 'hostile') {
    await hostile(file, rest[0]);
  } else if (mode === 'speedscope') {
    const doc = speedscope(file, rest[0]);
    const want = rest.slice(1);
    const names = doc.shared.frames.map((f) => f.name);
    for (const w of want) check(names.some((n) => n.startsWith(w)), 'frame ' + w + ' is in the file');
  } else {
    console.error('unknown mode ' + mode);
    process.exit(2);
  }
  done();
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
