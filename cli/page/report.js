/*
 * elmon's HTML report: draws the data cli/html.c puts in the page
 * (<script id="elmon-data">).  No library and no request: the page must
 * work opened from disk, offline, and its Content-Security-Policy forbids
 * every fetch.  Host text (names, culprits, frames) is put in only as text
 * nodes and attribute values, never as markup.
 *
 * Parts: the verdict and notes, the loop threads, the lag timeline (one
 * lane per loop thread that blocked: its spans at their time and lag, the
 * thresholds, the summary's p99, zoom and pan on the shared time axis),
 * the summary's lag histograms, the flame graph of blocked time (SVG, a
 * frame per rect with its name as SVG text; click zooms, the search box
 * highlights), and the sortable table of spans, each row linked to its
 * stack.
 */
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var D = JSON.parse(document.getElementById('elmon-data').textContent);
  var S = D.strings;
  var LANES_FIRST = 20, ROWS_FIRST = 200, FLAME_ROW_PX = 18, FLAME_MIN_PX = 0.4;
  /* span tuple members (html.c) */
  var LOOP = 0, START = 1, DUR = 2, LAG = 3, CRIT = 4, END = 5, CAUSE = 6, CULPRIT = 7, STACK = 8,
      FOLDED = 9, TURN = 10, OVER = 11;

  function str(i) { return i >= 0 ? S[i] : null; }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) {
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    });
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmtMs(ms) {
    if (ms >= 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms >= 100) return ms.toFixed(0) + ' ms';
    if (ms >= 10) return ms.toFixed(1) + ' ms';
    return ms.toFixed(2) + ' ms';
  }
  function fmtT(ms, span) {  /* an offset on the time axis */
    if (span < 2000) return ms.toFixed(span < 20 ? 2 : 0) + ' ms';
    return (ms / 1000).toFixed(span < 20000 ? 2 : span < 200000 ? 1 : 0) + ' s';
  }
  var t0ms = Number(D.t0_unix_ns.slice(0, -6) || 0);
  function clock(ms) {
    if (!t0ms) return '';
    var d = new Date(t0ms + ms);
    return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
  }
  function fmtAt(ms) { return (ms / 1000).toFixed(3) + ' s'; }  /* a span's start, since the run began */
  function loopName(l) { return l.process + ' ' + l.pid + ' / ' + l.thread + ' (' + l.tid + ')'; }
  function thresholdsOf(l) {
    return {
      w: l.block_ms > 0 ? l.block_ms : D.thresholds.warning_ms,
      c: l.critical_ms > 0 ? l.critical_ms : D.thresholds.critical_ms
    };
  }

  var root = el('div', { id: 'report' });
  document.body.appendChild(root);

  /* ---- heading, verdict, notes ---- */
  root.appendChild(el('h1', {}, ['elmon report']));
  var nProc = {};
  D.loops.forEach(function (l) { nProc[l.pid] = 1; });
  root.appendChild(el('p', { class: 'sub' }, [
    Object.keys(nProc).length + ' process(es), ' + D.loops.length + ' loop thread(s), ' + D.spans_total +
    ' blocking span(s) from ' + D.files + ' events file(s); ' + D.tool + ' ' + D.version +
    (t0ms ? '; run began ' + clock(0) : '')]));

  var verdict = el('div', { id: 'verdict', class: 'verdict' });
  var b = D.budget, hasBudget = b.fail_over_ms !== null || b.fail_on !== null;
  var budgetText = [];
  if (b.fail_over_ms !== null) budgetText.push('spans over ' + b.fail_over_ms + ' ms');
  if (b.fail_on !== null) budgetText.push('spans of severity ' + b.fail_on + ' or worse');
  if (D.run) {
    verdict.appendChild(el('div', { class: 'mono' }, ['$ ' + D.run.command.join(' ')]));
    verdict.appendChild(el('div', {}, ['exit status ' + D.run.exit_status + ', ' + D.run.wall_s.toFixed(1) +
      ' s; events in ' + D.run.events_dir]));
  }
  if (hasBudget) {
    var fail = D.budget.loops_over > 0;
    verdict.classList.add(fail ? 'fail' : 'pass');
    verdict.appendChild(el('div', { class: 'big', id: 'verdict-text' }, [fail
      ? 'Over budget: ' + budgetText.join(' or ') + ' in ' + D.budget.loops_over + ' loop thread(s)'
      : 'Within budget: no ' + budgetText.join(' or ')]));
  } else {
    verdict.appendChild(el('div', { class: 'big', id: 'verdict-text' }, [D.spans_total
      ? D.spans_total + ' blocking span(s); no budget was set'
      : (D.loops.length ? 'No turn blocked the loop' : 'No event loop ran')]));
  }
  root.appendChild(verdict);

  var notes = el('ul', { class: 'notes', id: 'notes' });
  function note(t) { notes.appendChild(el('li', {}, [t])); }
  note('The events files give a time only to turns that crossed the warning threshold (spans): the timeline ' +
    'draws those; every other turn is in the summary\u2019s histogram and percentiles.');
  if (D.thresholds.from === 'default' && !D.loops.some(function (l) { return l.block_ms > 0; }))
    note('Thresholds drawn: the defaults, ' + D.thresholds.warning_ms + ' and ' + D.thresholds.critical_ms +
      ' ms (the files carry no summary with the run\u2019s own).');
  if (D.spans_listed < D.spans_total)
    note('The timeline and the table show the ' + D.spans_listed + ' longest of ' + D.spans_total +
      ' spans; the flame graph and the counts cover all of them.');
  if (D.skipped_malformed || D.skipped_foreign)
    note('Skipped ' + D.skipped_malformed + ' malformed or cut and ' + D.skipped_foreign + ' foreign line(s).');
  if (D.loops.some(function (l) { return !l.summary; }))
    note('Loop threads without a summary belong to a process that was killed or is still running.');
  root.appendChild(notes);

  var totalBlocked = 0;
  D.stacks.forEach(function (s) { totalBlocked += s[1]; });
  var nCrit = 0;
  D.loops.forEach(function (l) { nCrit += l.critical; });
  var cards = el('div', { class: 'cards' });
  [[D.loops.length, 'loop threads'], [D.spans_total, 'blocking spans'], [nCrit, 'critical'],
   [fmtMs(totalBlocked), 'blocked in all']].forEach(function (c) {
    cards.appendChild(el('div', { class: 'card' }, [el('div', { class: 'n' }, [String(c[0])]),
      el('div', { class: 'l' }, [c[1]])]));
  });
  root.appendChild(cards);

  /* ---- loop threads ---- */
  root.appendChild(el('h2', {}, ['Loop threads']));
  if (!D.loops.length) {
    root.appendChild(el('div', { class: 'empty', id: 'loops-empty' },
      ['No event loop ran: nothing called epoll_wait, poll or select as a loop.']));
  } else {
    var lt = el('table', { id: 'loops' });
    var hdr = ['process', 'pid', 'thread', 'tid', 'poller', 'turns', 'util', 'p50', 'p99', 'max lag', 'warning',
               'critical', 'status'];
    lt.appendChild(el('thead', {}, [el('tr', {}, hdr.map(function (h, i) {
      return el('th', { class: i === 1 || i === 3 || (i >= 5 && i <= 11) ? 'num' : '' }, [h]);
    }))]));
    var ltb = el('tbody');
    var LOOP_ROWS = 500;
    D.loops.slice(0, LOOP_ROWS).forEach(function (l) {
      var s = l.summary;
      ltb.appendChild(el('tr', {}, [
        el('td', {}, [l.process]), el('td', { class: 'num' }, [String(l.pid)]), el('td', {}, [l.thread]),
        el('td', { class: 'num' }, [String(l.tid)]), el('td', {}, [l.poller]),
        el('td', { class: 'num' }, [s ? String(l.turns) : '-']),
        el('td', { class: 'num' }, [s ? (100 * l.utilization).toFixed(1) + '%' : '-']),
        el('td', { class: 'num' }, [s ? fmtMs(l.p50_ms) : '-']), el('td', { class: 'num' }, [s ? fmtMs(l.p99_ms) : '-']),
        el('td', { class: 'num' }, [s ? fmtMs(l.max_ms) : '-']), el('td', { class: 'num' }, [String(l.warning)]),
        el('td', { class: 'num' }, [String(l.critical)]),
        el('td', { class: 'status-' + (s ? l.status : '') }, [s ? l.status : 'no summary'])]));
    });
    lt.appendChild(ltb);
    root.appendChild(lt);
    if (D.loops.length > LOOP_ROWS)
      root.appendChild(el('p', { class: 'muted' }, ['and ' + (D.loops.length - LOOP_ROWS) +
        ' more loop threads (all are in `elmon report --json`).']));
  }

  /* ---- lag timeline ---- */
  root.appendChild(el('h2', {}, ['Lag timeline']));
  var tlBox = el('div', { id: 'timeline' });
  root.appendChild(tlBox);
  var spans = D.spans;
  var byLoop = D.loops.map(function () { return []; });
  spans.forEach(function (s, i) { byLoop[s[LOOP]].push(i); });
  var laneLoops = [];
  D.loops.forEach(function (l, i) { if (byLoop[i].length) laneLoops.push(i); });
  laneLoops.sort(function (a, b) { return D.loops[b].blocked_ms - D.loops[a].blocked_ms; });
  var tMax = 1;
  D.loops.forEach(function (l) { if (l.end_ms > tMax) tMax = l.end_ms; });
  spans.forEach(function (s) { if (s[START] + s[DUR] > tMax) tMax = s[START] + s[DUR]; });
  var view = { x0: 0, x1: tMax * 1.01 };
  var lanesShown = Math.min(LANES_FIRST, laneLoops.length);
  var selected = -1;
  var laneSvgs = [];

  var tlTools = el('div', { class: 'toolbar' });
  var zin = el('button', { id: 'tl-zoom-in', type: 'button' }, ['Zoom in']);
  var zout = el('button', { id: 'tl-zoom-out', type: 'button' }, ['Zoom out']);
  var zreset = el('button', { id: 'tl-reset', type: 'button' }, ['Whole run']);
  var range = el('span', { id: 'tl-range', class: 'muted' });
  tlTools.appendChild(zin); tlTools.appendChild(zout); tlTools.appendChild(zreset); tlTools.appendChild(range);
  tlTools.appendChild(el('span', { class: 'muted' }, ['(wheel: zoom, drag: pan, click a span: its stack)']));
  var lanesBox = el('div', { id: 'lanes' });
  if (!laneLoops.length) {
    tlBox.appendChild(el('div', { class: 'empty', id: 'timeline-empty' },
      [D.loops.length ? 'No span: no turn crossed the warning threshold.' : 'No event loop ran.']));
  } else {
    tlBox.appendChild(tlTools);
    tlBox.appendChild(lanesBox);
  }
  var moreLanes = el('button', { id: 'tl-more', type: 'button' });

  function zoomAround(cx, f) {
    var w = (view.x1 - view.x0) * f;
    if (w < 1) w = 1;
    if (w > tMax * 1.01) { view.x0 = 0; view.x1 = tMax * 1.01; redrawLanes(); return; }
    var x0 = cx - (cx - view.x0) * f;
    view.x0 = Math.max(0, x0);
    view.x1 = view.x0 + w;
    redrawLanes();
  }
  zin.addEventListener('click', function () { zoomAround((view.x0 + view.x1) / 2, 0.5); });
  zout.addEventListener('click', function () { zoomAround((view.x0 + view.x1) / 2, 2); });
  zreset.addEventListener('click', function () { view.x0 = 0; view.x1 = tMax * 1.01; redrawLanes(); });

  function niceStep(span, n) {
    var raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10);
  }

  var LANE_H = 120, ML = 64, MR = 16, MT = 8, MB = 22;
  function laneWidth() { return Math.max(400, (lanesBox.clientWidth || 1000)); }

  function drawLane(svg, li) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var l = D.loops[li], th = thresholdsOf(l), W = laneWidth(), H = LANE_H;
    svg.setAttribute('width', W); svg.setAttribute('height', H);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var pw = W - ML - MR, ph = H - MT - MB;
    var maxLag = th.c * 1.5;
    byLoop[li].forEach(function (i) { if (spans[i][LAG] > maxLag) maxLag = spans[i][LAG]; });
    var yLo = Math.max(1, Math.min(th.w / 2, (l.p99_ms || th.w) / 2)), yHi = maxLag * 1.3;
    function ys(v) { v = Math.max(yLo, v); return MT + ph - ph * (Math.log(v / yLo) / Math.log(yHi / yLo)); }
    function xs(t) { return ML + pw * (t - view.x0) / (view.x1 - view.x0); }
    var clip = 'clip-' + li;
    var defs = sv('defs');
    var cp = sv('clipPath', { id: clip });
    cp.appendChild(sv('rect', { x: ML, y: MT, width: pw, height: ph }));
    defs.appendChild(cp);
    svg.appendChild(defs);
    var bg = sv('rect', { class: 'plot-bg', x: ML, y: MT, width: pw, height: ph });
    svg.appendChild(bg);
    /* y axis: log ms */
    var ya = sv('g', { class: 'axis y-axis' });
    ya.appendChild(sv('line', { x1: ML, y1: MT, x2: ML, y2: MT + ph }));
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000, 300000].forEach(function (v) {
      if (v < yLo || v > yHi) return;
      var y = ys(v);
      svg.appendChild(sv('line', { class: 'grid', x1: ML, x2: ML + pw, y1: y, y2: y }));
      ya.appendChild(sv('line', { x1: ML - 4, x2: ML, y1: y, y2: y }));
      ya.appendChild(sv('text', { x: ML - 6, y: y + 3.5, 'text-anchor': 'end' }, v >= 1000 ? (v / 1000) + ' s' : v + ' ms'));
    });
    svg.appendChild(ya);
    /* x axis: time since the run began */
    var xa = sv('g', { class: 'axis x-axis' });
    xa.appendChild(sv('line', { x1: ML, y1: MT + ph, x2: ML + pw, y2: MT + ph }));
    var span = view.x1 - view.x0, step = niceStep(span, Math.max(2, Math.floor(pw / 90)));
    for (var t = Math.ceil(view.x0 / step) * step; t <= view.x1; t += step) {
      var x = xs(t);
      xa.appendChild(sv('line', { x1: x, x2: x, y1: MT + ph, y2: MT + ph + 4 }));
      xa.appendChild(sv('text', { x: x, y: MT + ph + 15, 'text-anchor': 'middle' }, fmtT(t, span)));
    }
    svg.appendChild(xa);
    /* thresholds and the summary's p99 */
    [['warning', th.w], ['critical', th.c]].forEach(function (p) {
      var y = ys(p[1]);
      svg.appendChild(sv('line', { class: 'threshold ' + p[0], x1: ML, x2: ML + pw, y1: y, y2: y }));
      svg.appendChild(sv('text', { class: 'threshold-label ' + p[0], x: ML + pw - 4, y: y - 3, 'text-anchor': 'end' },
        p[0] + ' ' + p[1] + ' ms'));
    });
    if (l.summary && l.p99_ms > yLo) {
      var y99 = ys(l.p99_ms);
      svg.appendChild(sv('line', { class: 'p99', x1: ML, x2: ML + pw, y1: y99, y2: y99 }));
      svg.appendChild(sv('text', { class: 'p99-label', x: ML + 4, y: y99 - 3 }, 'p99 of all turns ' + fmtMs(l.p99_ms)));
    }
    /* the spans: from the time each began to its end, as tall as its lag */
    var g = sv('g', { class: 'spans', 'clip-path': 'url(#' + clip + ')' });
    byLoop[li].forEach(function (i) {
      var s = spans[i];
      if (s[START] + s[DUR] < view.x0 || s[START] > view.x1) return;
      var x0 = xs(s[START]), x1 = xs(s[START] + s[DUR]), w = Math.max(2, x1 - x0), y = ys(s[LAG]);
      var r = sv('rect', { class: 'span ' + (s[CRIT] ? 'critical' : 'warning') + (i === selected ? ' selected' : ''),
        x: x0, y: y, width: w, height: Math.max(1, MT + ph - y), 'data-span': i });
      r.appendChild(sv('title', {}, 'turn ' + s[TURN] + ': ' + fmtMs(s[DUR]) + ' (' + (s[CRIT] ? 'critical' : 'warning') +
        '), at ' + fmtAt(s[START]) + '\n' + (str(s[CULPRIT]) || '')));
      r.addEventListener('click', function (ev) { ev.stopPropagation(); selectSpan(i, true); });
      g.appendChild(r);
    });
    svg.appendChild(g);
    /* wheel zooms around the pointer, drag pans */
    svg.onwheel = function (ev) {
      ev.preventDefault();
      var rect = svg.getBoundingClientRect();
      var cx = view.x0 + (ev.clientX - rect.left - ML) / pw * (view.x1 - view.x0);
      zoomAround(cx, ev.deltaY < 0 ? 0.8 : 1.25);
    };
    bg.onmousedown = function (ev) {
      var sx = ev.clientX, v0 = view.x0, v1 = view.x1;
      function move(e) {
        var d = (e.clientX - sx) / pw * (v1 - v0);
        var n0 = Math.max(0, v0 - d);
        view.x0 = n0; view.x1 = n0 + (v1 - v0);
        redrawLanes();
      }
      function up() { window.removeEventListener('mousemove', move); window.removeEventListener('mouseup', up); }
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', up);
    };
  }

  var redrawQueued = false;
  function redrawLanes() {
    range.textContent = 'showing ' + fmtT(view.x0, view.x1 - view.x0) + ' to ' + fmtT(view.x1, view.x1 - view.x0);
    if (redrawQueued) return;
    redrawQueued = true;
    requestAnimationFrame(function () {
      redrawQueued = false;
      laneSvgs.forEach(function (p) { drawLane(p[0], p[1]); });
    });
  }

  function addLanes(n) {
    laneLoops.slice(laneSvgs.length, n).forEach(function (li) {
      var l = D.loops[li];
      var stats = ' ' + byLoop[li].length + ' span(s), ' + fmtMs(l.blocked_ms) + ' blocked' +
        (l.summary ? '; all ' + l.turns + ' turns: p50 ' + fmtMs(l.p50_ms) + ', p99 ' + fmtMs(l.p99_ms) +
          ', max ' + fmtMs(l.max_ms) : '; no summary');
      var wrap = el('div', { class: 'lane-wrap' }, [el('div', { class: 'lane-title' },
        [el('b', {}, [loopName(l)]), el('span', { class: 'stats' }, [stats])])]);
      var svg = sv('svg', { class: 'lane', 'data-loop': li });
      wrap.appendChild(svg);
      lanesBox.appendChild(wrap);
      laneSvgs.push([svg, li]);
      drawLane(svg, li);
    });
    if (laneSvgs.length < laneLoops.length) {
      moreLanes.textContent = 'Show all ' + laneLoops.length + ' loop threads that blocked';
      lanesBox.appendChild(moreLanes);
    } else if (moreLanes.parentNode) {
      moreLanes.parentNode.removeChild(moreLanes);
    }
  }
  moreLanes.addEventListener('click', function () {
    moreLanes.parentNode.removeChild(moreLanes);
    addLanes(laneLoops.length);
  });

  /* ---- the summary's lag histograms ---- */
  var histLoops = D.loops.map(function (l, i) { return i; }).filter(function (i) { return D.loops[i].hist.length; });
  root.appendChild(el('h2', {}, ['Lag of every turn (the summary\u2019s histogram)']));
  var histBox = el('div', { id: 'histograms' });
  root.appendChild(histBox);
  if (!histLoops.length) {
    histBox.appendChild(el('div', { class: 'empty' }, ['No summary with a histogram: the process was killed, ' +
      'is still running, or wrote its files with an older libelmon.']));
  }
  histLoops.sort(function (a, b) { return D.loops[b].max_ms - D.loops[a].max_ms; });
  function drawHist(li) {
    var l = D.loops[li], th = thresholdsOf(l), W = 420, H = 120, ml = 44, mb = 22, mt = 8, mr = 8;
    /* decades of lag, counts on a log scale */
    var bins = {}, lo = 99, hi = -99, maxN = 1;
    l.hist.forEach(function (h) {
      var d = Math.floor(Math.log10(Math.max(h[0], 1e-6)) * 4);  /* quarter decades */
      bins[d] = (bins[d] || 0) + h[1];
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    });
    for (var d in bins) if (bins[d] > maxN) maxN = bins[d];
    var svg = sv('svg', { class: 'hist', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H });
    var nb = hi - lo + 1, bw = (W - ml - mr) / Math.max(nb, 1), ph = H - mt - mb;
    for (var k = lo; k <= hi; k++) {
      var n = bins[k] || 0;
      if (!n) continue;
      var h = ph * Math.log(1 + n) / Math.log(1 + maxN), edge = Math.pow(10, k / 4);
      var r = sv('rect', { class: 'hist-bar' + (edge >= th.c ? ' over-critical' : edge * Math.pow(10, 0.25) > th.w ? ' over-warning' : ''),
        x: ml + (k - lo) * bw + 1, y: mt + ph - h, width: Math.max(1, bw - 2), height: h });
      r.appendChild(sv('title', {}, n + ' turn(s) with lag ' + fmtMs(edge) + ' to ' + fmtMs(edge * Math.pow(10, 0.25))));
      svg.appendChild(r);
    }
    var xa = sv('g', { class: 'axis x-axis' });
    xa.appendChild(sv('line', { x1: ml, x2: W - mr, y1: mt + ph, y2: mt + ph }));
    for (var k2 = Math.ceil(lo / 4) * 4; k2 <= hi + 1; k2 += 4) {
      var x = ml + (k2 - lo) * bw, v = Math.pow(10, k2 / 4);
      xa.appendChild(sv('text', { x: x, y: H - 6, 'text-anchor': 'middle' }, v >= 1000 ? v / 1000 + ' s' : v >= 1 ? v + ' ms' : v * 1000 + ' \u00b5s'));
    }
    svg.appendChild(xa);
    svg.appendChild(sv('text', { x: 4, y: mt + 10, class: 'muted' }, 'turns'));
    return el('div', { class: 'hist-wrap' }, [el('div', { class: 'lane-title' }, [el('b', {}, [loopName(l)]),
      el('span', { class: 'stats' }, [' ' + l.turns + ' turns, max ' + fmtMs(l.max_ms)])]), svg]);
  }
  histLoops.slice(0, 12).forEach(function (li) { histBox.appendChild(drawHist(li)); });
  if (histLoops.length > 12)
    histBox.appendChild(el('p', { class: 'muted' }, ['The 12 loop threads with the largest lag are drawn; ' +
      (histLoops.length - 12) + ' more have a histogram.']));

  /* ---- flame graph of blocked time ---- */
  root.appendChild(el('h2', {}, ['Where the loops blocked (flame graph of blocked time)']));
  var flBox = el('div', { id: 'flame' });
  root.appendChild(flBox);
  function node(name, parent) { return { name: name, v: 0, kids: {}, list: null, parent: parent, depth: parent ? parent.depth + 1 : 0 }; }
  var froot = node('all', null);
  var maxDepth = 0;
  D.stacks.forEach(function (s) {
    var frames = S[s[0]].split(';'), n = froot;
    froot.v += s[1];
    frames.forEach(function (f) {
      var k = n.kids[f] || (n.kids[f] = node(f, n));
      k.v += s[1];
      n = k;
    });
    if (frames.length > maxDepth) maxDepth = frames.length;
  });
  (function sortKids(n) {
    n.list = Object.keys(n.kids).map(function (k) { return n.kids[k]; });
    n.list.sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
    n.list.forEach(sortKids);
  })(froot);
  var focus = froot, query = '', pathNode = null;
  var flTools = el('div', { class: 'toolbar' });
  var search = el('input', { type: 'search', id: 'flame-search', placeholder: 'Search frames (text, case-insensitive)' });
  var flReset = el('button', { id: 'flame-reset', type: 'button' }, ['Reset zoom']);
  var matched = el('span', { id: 'flame-matched', class: 'muted' });
  flTools.appendChild(search); flTools.appendChild(flReset); flTools.appendChild(matched);
  var flSvg = sv('svg', { id: 'flame-svg' });
  var flDetail = el('div', { id: 'flame-detail' }, ['Width is time blocked. Click a frame to zoom into it.']);
  if (!froot.v) {
    flBox.appendChild(el('div', { class: 'empty', id: 'flame-empty' }, ['No blocked time: no span was recorded.']));
  } else {
    flBox.appendChild(flTools);
    flBox.appendChild(flSvg);
    flBox.appendChild(flDetail);
  }
  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return h;
  }
  function color(n) {
    var h = hue(n.name);
    if (n.depth === 1) return 'hsl(210,30%,' + (72 + h % 10) + '%)';   /* the process */
    if (n.name.charAt(0) === '[') return 'hsl(0,0%,' + (74 + h % 8) + '%)';
    return 'hsl(' + (12 + h % 38) + ',' + (70 + h % 20) + '%,' + (58 + (h >> 8) % 16) + '%)';
  }
  function isAncestor(a, n) { for (var p = n; p; p = p.parent) if (p === a) return true; return false; }
  function drawFlame() {
    while (flSvg.firstChild) flSvg.removeChild(flSvg.firstChild);
    var W = Math.max(400, flBox.clientWidth || 1000);
    var depthShown = maxDepth + 1, H = depthShown * FLAME_ROW_PX + 4;
    flSvg.setAttribute('width', W); flSvg.setAttribute('height', H);
    flSvg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var q = query.toLowerCase(), matchV = 0, drawn = 0;
    function box(n, x, w) {
      var y = n.depth * FLAME_ROW_PX;
      var cls = 'frame';
      var m = q && n.depth > 0 && n.name.toLowerCase().indexOf(q) >= 0;
      if (m) cls += ' match';
      if (n !== focus && isAncestor(n, focus)) cls += ' ancestor';
      if (pathNode && isAncestor(n, pathNode)) cls += ' path';
      var g = sv('svg', { class: cls, x: x, y: y, width: w, height: FLAME_ROW_PX - 1, 'data-name': n.name });
      g.appendChild(sv('rect', { x: 0, y: 0, width: '100%', height: '100%', fill: color(n) }));
      g.appendChild(sv('text', { x: 4, y: 12.5 }, n.name));
      g.appendChild(sv('title', {}, n.name + '\n' + fmtMs(n.v) + ' blocked, ' + (100 * n.v / froot.v).toFixed(1) + '% of all'));
      g.addEventListener('click', function () { focus = n; drawFlame(); });
      g.addEventListener('mouseenter', function () {
        flDetail.textContent = n.name + ': ' + fmtMs(n.v) + ' blocked (' + (100 * n.v / froot.v).toFixed(1) + '% of all' +
          (focus !== froot ? ', ' + (100 * n.v / focus.v).toFixed(1) + '% of the zoomed frame' : '') + ')';
      });
      flSvg.appendChild(g);
      drawn++;
      return m;
    }
    /* the focus's ancestors at full width, then the focus and what it calls */
    for (var a = focus.parent, chain = []; a; a = a.parent) chain.unshift(a);
    chain.forEach(function (a) { box(a, 0, W); });
    (function walk(n, x, w, under) {
      var m = box(n, x, w);
      if (m && !under) matchV += n.v;
      var cx = x;
      n.list.forEach(function (k) {
        var kw = w * k.v / n.v;
        if (kw >= FLAME_MIN_PX && drawn < 30000) walk(k, cx, kw, under || m);
        else if (q && !(under || m)) matchV += hiddenMatch(k, q);
        cx += kw;
      });
    })(focus, 0, W, false);
    if (q) {
      var inFocus = focus.v;
      matched.textContent = 'Matched: ' + fmtMs(matchV) + ' of ' + fmtMs(inFocus) + ' (' + (100 * matchV / inFocus).toFixed(1) + '%)';
    } else {
      matched.textContent = '';
    }
  }
  /* blocked time of matches under a frame too narrow to draw */
  function hiddenMatch(n, q) {
    if (n.name.toLowerCase().indexOf(q) >= 0) return n.v;
    var v = 0;
    n.list.forEach(function (k) { v += hiddenMatch(k, q); });
    return v;
  }
  search.addEventListener('input', function () { query = search.value; drawFlame(); });
  flReset.addEventListener('click', function () { focus = froot; pathNode = null; drawFlame(); });
  function showInFlame(folded) {
    var n = froot;
    folded.split(';').forEach(function (f) { if (n && n.kids[f]) n = n.kids[f]; });
    pathNode = n;
    focus = n.parent && n.parent.parent ? n.parent.parent : froot;
    drawFlame();
    flBox.scrollIntoView({ block: 'start' });
  }

  /* ---- spans table ---- */
  root.appendChild(el('h2', {}, ['Blocking spans']));
  var tBox = el('div', { id: 'spans-box' });
  root.appendChild(tBox);
  var detail = el('div', { id: 'stack-detail' }, [el('span', { class: 'muted' }, ['Click a span (in the table or the timeline) to see its stack.'])]);
  var cols = [
    { key: 'start', label: 'start', num: true, get: function (s) { return s[START]; } },
    { key: 'duration', label: 'duration', num: true, get: function (s) { return s[DUR]; } },
    { key: 'lag', label: 'lag', num: true, get: function (s) { return s[LAG]; } },
    { key: 'severity', label: 'severity', get: function (s) { return s[CRIT]; } },
    { key: 'cause', label: 'cause', get: function (s) { return str(s[CAUSE]) || ''; } },
    { key: 'culprit', label: 'culprit', get: function (s) { return str(s[CULPRIT]) || ''; } },
    { key: 'process', label: 'process', get: function (s) { var l = D.loops[s[LOOP]]; return l.process + ' ' + l.pid; } },
    { key: 'thread', label: 'thread', get: function (s) { var l = D.loops[s[LOOP]]; return l.thread + ' ' + l.tid; } }
  ];
  var order = spans.map(function (s, i) { return i; });
  var sortKey = 'duration', sortDir = -1, rowsShown = ROWS_FIRST;
  var table = el('table', { id: 'spans' }), thead = el('thead'), tbody = el('tbody');
  var hr = el('tr');
  cols.forEach(function (c) {
    var th = el('th', { class: 'sortable' + (c.num ? ' num' : ''), 'data-key': c.key }, [c.label]);
    th.addEventListener('click', function () {
      if (sortKey === c.key) sortDir = -sortDir; else { sortKey = c.key; sortDir = c.num ? -1 : 1; }
      sortRows();
    });
    hr.appendChild(th);
  });
  hr.appendChild(el('th', {}, ['stack']));
  thead.appendChild(hr);
  table.appendChild(thead); table.appendChild(tbody);
  var moreRows = el('button', { id: 'spans-more', type: 'button' });
  if (!spans.length) {
    tBox.appendChild(el('div', { class: 'empty', id: 'spans-empty' }, ['No blocking span.']));
  } else {
    tBox.appendChild(table);
    tBox.appendChild(moreRows);
    tBox.appendChild(detail);
  }
  function sortRows() {
    var c = cols.filter(function (c) { return c.key === sortKey; })[0];
    order.sort(function (a, b) {
      var x = c.get(spans[a]), y = c.get(spans[b]);
      return (x < y ? -1 : x > y ? 1 : a - b) * sortDir;
    });
    Array.prototype.forEach.call(hr.children, function (th) {
      th.classList.remove('sorted-asc', 'sorted-desc');
      if (th.getAttribute('data-key') === sortKey) th.classList.add(sortDir > 0 ? 'sorted-asc' : 'sorted-desc');
    });
    renderRows();
  }
  function renderRows() {
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    order.slice(0, rowsShown).forEach(function (i) {
      var s = spans[i], l = D.loops[s[LOOP]];
      var link = el('a', { href: '#stack-detail', class: 'stack-link' }, ['stack']);
      var tr = el('tr', { class: 'span-row' + (i === selected ? ' selected' : ''), 'data-span': i }, [
        el('td', { class: 'num', title: clock(s[START]) }, [fmtAt(s[START])]),
        el('td', { class: 'num' }, [fmtMs(s[DUR])]), el('td', { class: 'num' }, [fmtMs(s[LAG])]),
        el('td', { class: 'sev ' + (s[CRIT] ? 'critical' : 'warning') }, [(s[CRIT] ? 'critical' : 'warning') +
          (s[END] === 2 ? ' (never ended)' : s[END] === 1 ? ' (at exit)' : '') + (s[OVER] ? ' \u2717 budget' : '')]),
        el('td', {}, [str(s[CAUSE]) || '-']), el('td', { class: 'mono culprit' }, [str(s[CULPRIT]) || '']),
        el('td', {}, [l.process + ' ' + l.pid]), el('td', {}, [l.thread + ' (' + l.tid + ')']), el('td', {}, [link])]);
      tr.addEventListener('click', function (ev) { if (ev.target !== link) ev.preventDefault(); selectSpan(i, false); });
      tbody.appendChild(tr);
    });
    if (order.length > rowsShown) {
      moreRows.textContent = 'Show ' + Math.min(1000, order.length - rowsShown) + ' more of ' + (order.length - rowsShown);
      moreRows.style.display = '';
    } else {
      moreRows.style.display = 'none';
    }
  }
  moreRows.addEventListener('click', function () { rowsShown += 1000; renderRows(); });
  function selectSpan(i, fromTimeline) {
    selected = i;
    var s = spans[i], l = D.loops[s[LOOP]];
    while (detail.firstChild) detail.removeChild(detail.firstChild);
    detail.appendChild(el('div', {}, [el('b', {}, ['turn ' + s[TURN] + ' of ' + loopName(l)]),
      ': ' + fmtMs(s[DUR]) + ' busy, lag ' + fmtMs(s[LAG]) + ', ' + (s[CRIT] ? 'critical' : 'warning') +
      ', cause ' + (str(s[CAUSE]) || 'not captured') + ', at ' + fmtAt(s[START]) + (t0ms ? ' (' + clock(s[START]) + ')' : '')]));
    detail.appendChild(el('div', { class: 'mono' }, ['culprit: ' + (str(s[CULPRIT]) || '')]));
    var show = el('button', { type: 'button', id: 'stack-in-flame' }, ['Show in the flame graph']);
    show.addEventListener('click', function () { showInFlame(S[s[FOLDED]]); });
    detail.appendChild(show);
    detail.appendChild(el('pre', { id: 'stack-text' }, [str(s[STACK]) || '(no stack was captured)']));
    Array.prototype.forEach.call(tbody.children, function (tr) {
      tr.classList.toggle('selected', Number(tr.getAttribute('data-span')) === i);
    });
    redrawLanes();
    if (fromTimeline) detail.scrollIntoView({ block: 'nearest' });
  }

  /* ---- draw ---- */
  addLanes(lanesShown);
  redrawLanes();
  if (froot.v) drawFlame();
  if (spans.length) sortRows();
  var lastW = window.innerWidth;
  window.addEventListener('resize', function () {
    if (window.innerWidth === lastW) return;
    lastW = window.innerWidth;
    redrawLanes();
    if (froot.v) drawFlame();
  });
  document.body.setAttribute('data-ready', '1');
})();
