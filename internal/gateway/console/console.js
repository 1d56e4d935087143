// Wallet console: a small single-page app over the gateway's HTTP API.
// Plain JavaScript, no dependencies, no build step. Everything shown comes
// from the API with the operator's bearer token; all text from the API is
// written with textContent, never parsed as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'wallet.console.token';
  const POLL_MS = 2000;
  const CHART_WINDOW_MS = 10 * 60 * 1000;
  // The API is served by the same gateway, one level above /console/.
  const API = new URL('../', window.location.href);

  const main = document.getElementById('main');
  const banner = document.getElementById('banner');
  const footerStatus = document.getElementById('footer-status');

  // ---- small helpers -----------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      // Through the CSSOM: the page's CSP refuses style attributes.
      else if (k === 'style') node.style.cssText = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else node.setAttribute(k, String(v));
    }
    return node;
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  // A version 4 UUID from getRandomValues, which, unlike randomUUID, also
  // exists on pages served over plain HTTP beyond localhost.
  function uuid4() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  // fmtShort is a table's time: the year only when it is not this one.
  function fmtShort(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    const o = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
    if (d.getFullYear() !== new Date().getFullYear()) o.year = 'numeric';
    return d.toLocaleString(undefined, o);
  }

  function fmtAgo(seconds) {
    if (seconds === null || seconds === undefined) return '-';
    const s = Math.max(0, seconds);
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  function sinceSeconds(iso, now) {
    if (!iso) return null;
    return ((now || Date.now()) - new Date(iso).getTime()) / 1000;
  }

  function fmtRate(r) {
    if (r === null || r === undefined) return '-';
    if (r >= 100) return Math.round(r).toLocaleString();
    if (r >= 10) return r.toFixed(1);
    return r.toFixed(2);
  }

  function fmtInt(n) { return Number(n || 0).toLocaleString(); }

  function shortId(id) { return id ? id.slice(0, 8) : ''; }

  // A stable colour per worker id, so a worker's partitions read as a group.
  function hue(s) {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return `hsl(${h % 360}, 62%, 48%)`;
  }

  function badge(text, cls) { return el('span', { class: `badge ${cls || ''}`, text }); }

  function card(title, meta, ...body) {
    return el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', { text: title }), meta ? el('span', { class: 'meta', text: meta }) : null),
      ...body);
  }

  function showBanner(text, bad) {
    banner.textContent = text;
    banner.classList.toggle('bad', !!bad);
    banner.hidden = !text;
  }

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, opts) {
    const o = opts || {};
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    Object.assign(headers, o.headers || {});
    let resp;
    try {
      resp = await fetch(new URL(path, API), {
        method: o.method || 'GET', headers, cache: 'no-store', credentials: 'omit',
        body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
      });
    } catch (e) {
      footerStatus.textContent = 'The gateway cannot be reached.';
      throw new ApiError(0, { detail: 'The gateway cannot be reached.' });
    }
    let body = null;
    const text = await resp.text();
    if (text) {
      try { body = JSON.parse(text); } catch (e) { body = { detail: text.slice(0, 200) }; }
    }
    if (resp.status === 401) {
      showBanner('This gateway needs a bearer token: open "Token" at the top right and paste one.', false);
      openTokenPanel();
    }
    footerStatus.textContent = `Connected to ${API.host}${token() ? ' with a token' : ''}`;
    if (!resp.ok && !(o.accept || []).includes(resp.status)) throw new ApiError(resp.status, body);
    return { status: resp.status, body, headers: resp.headers };
  }

  function problemText(err) {
    if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
    const b = err.body || {};
    if (err.status === 403) return 'This needs a write token: the current token may only read.';
    const code = b.code ? ` (${b.code})` : '';
    return `${b.detail || err.message}${code}`;
  }

  // Optional endpoints (holds, reversals) are shown only when this
  // gateway's OpenAPI document lists them.
  let paths = null;
  async function apiPaths() {
    if (paths) return paths;
    try {
      const r = await api('openapi.json');
      paths = new Set(Object.keys((r.body && r.body.paths) || {}));
    } catch (e) {
      paths = new Set();
    }
    return paths;
  }

  // ---- token panel -------------------------------------------------------

  const tokenPanel = document.getElementById('token-panel');
  const tokenInput = document.getElementById('token-input');

  function refreshTokenLabel() {
    const has = !!token();
    document.getElementById('token-dot').classList.toggle('on', has);
    document.getElementById('token-label').textContent = has ? 'Token set' : 'Token';
  }

  function openTokenPanel() {
    tokenPanel.hidden = false;
    tokenInput.focus();
  }

  document.getElementById('token-button').addEventListener('click', () => {
    tokenPanel.hidden = !tokenPanel.hidden;
    if (!tokenPanel.hidden) tokenInput.focus();
  });
  document.getElementById('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = tokenInput.value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    tokenInput.value = '';
    tokenPanel.hidden = true;
    showBanner('');
    paths = null;
    refreshTokenLabel();
    route();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    tokenInput.value = '';
    paths = null;
    refreshTokenLabel();
  });

  // ---- router ------------------------------------------------------------

  let cleanup = null;
  let generation = 0;

  function route() {
    if (cleanup) { cleanup(); cleanup = null; }
    generation++;
    const hash = window.location.hash.replace(/^#\/?/, '');
    const [section, arg] = hash.split('/').map(decodeURIComponent);
    for (const a of document.querySelectorAll('.nav a')) {
      a.classList.toggle('active', a.dataset.section === (section || 'overview'));
    }
    main.replaceChildren();
    const page = {
      overview: overviewPage, accounts: accountPage, transfers: transferPage, 'dead-letters': deadLettersPage,
    }[section || 'overview'];
    if (!page) {
      main.append(card('Not found', null, el('p', { text: 'There is no such page.' })));
      return;
    }
    page(arg || '', generation);
  }

  function current(gen) { return gen === generation; }

  window.addEventListener('hashchange', route);

  // ---- Overview ----------------------------------------------------------

  function overviewPage(_arg, gen) {
    const live = el('span', { class: 'live' }, el('span', { class: 'dot' }), el('span', { text: 'connecting' }));
    main.append(el('div', { class: 'page-head' },
      el('div', {}, el('h1', { text: 'Overview' }),
        el('div', { class: 'sub', text: 'Requests flowing through NATS to the workers and PostgreSQL, refreshed every 2 seconds.' })),
      live));

    const kpi = (label) => {
      const v = el('div', { class: 'value', text: '-' });
      const n = el('div', { class: 'note' });
      const box = el('div', { class: 'card kpi' }, el('div', { class: 'label', text: label }), v, n);
      return { box, v, n };
    };
    const k = {
      accepted: kpi('Accepted / s'), decided: kpi('Decided / s'), pending: kpi('Pending'),
      oldest: kpi('Oldest pending'), workers: kpi('Workers'), dead: kpi('Dead letters'),
    };
    main.append(el('div', { class: 'grid kpis' }, Object.values(k).map((x) => x.box)));

    const chartBox = el('div', { id: 'rate-chart' });
    const legend = el('div', { class: 'legend' },
      el('span', {}, el('i', { class: 'accepted' }), 'accepted'),
      el('span', {}, el('i', { class: 'decided' }), 'decided (applied or rejected)'));
    const partsBox = el('div', { class: 'partitions', id: 'partitions' });
    const workersBox = el('div', {});
    const deadBox = el('div', {});
    const partsMeta = el('span', { class: 'meta' });
    main.append(
      el('div', { class: 'grid two' },
        el('section', { class: 'card' },
          el('div', { class: 'card-head' }, el('h2', { text: 'Throughput, last 10 minutes' }), legend),
          chartBox),
        el('section', { class: 'card' },
          el('div', { class: 'card-head' }, el('h2', { text: 'Dead letters by reason' }),
            el('a', { href: '#/dead-letters', text: 'View all' })),
          deadBox)),
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h2', { text: 'Partitions' }), partsMeta),
        partsBox),
      card('Workers', 'from the wallet_workers membership; partitions dealt round-robin over the sorted ids', workersBox));

    let timer = null;
    let last = null;

    async function tick() {
      if (!current(gen)) return;
      try {
        const r = await api('v1/ops/overview');
        if (!current(gen)) return;
        last = r.body;
        render(r.body);
        live.classList.remove('stale');
        live.lastChild.textContent = `live · ${new Date().toLocaleTimeString()}`;
      } catch (e) {
        if (!current(gen)) return;
        live.classList.add('stale');
        live.lastChild.textContent = problemText(e);
      }
      if (current(gen)) timer = setTimeout(tick, POLL_MS);
    }

    function render(o) {
      const rates = o.rates || [];
      const lastRate = rates.length ? rates[rates.length - 1] : null;
      const recent = rates.filter((r) => new Date(o.at) - new Date(r.at) <= 60000);
      const avg = (f) => {
        const secs = recent.reduce((s, r) => s + r.seconds, 0);
        return secs > 0 ? recent.reduce((s, r) => s + f(r), 0) / secs : null;
      };
      k.accepted.v.textContent = fmtRate(lastRate ? lastRate.accepted_per_second : null);
      const avgA = avg((r) => r.accepted);
      k.accepted.n.textContent = avgA === null ? 'collecting samples' : `${fmtRate(avgA)} avg over 1 min`;
      k.decided.v.textContent = fmtRate(lastRate ? lastRate.decided_per_second : null);
      const avgD = avg((r) => r.decided);
      k.decided.n.textContent = avgD === null ? 'collecting samples' : `${fmtRate(avgD)} avg over 1 min`;
      k.pending.v.textContent = fmtInt(o.pending);
      const busy = o.partitions.filter((p) => p.pending > 0).length;
      k.pending.n.textContent = `${busy} of ${o.partitions.length} partitions`;
      k.oldest.v.textContent = o.oldest_pending_age_seconds === null ? 'none' : fmtAgo(o.oldest_pending_age_seconds);
      k.oldest.n.textContent = o.oldest_pending_at ? `since ${new Date(o.oldest_pending_at).toLocaleTimeString()}` : 'nothing waiting';
      k.oldest.box.classList.toggle('warn', o.oldest_pending_age_seconds !== null && o.oldest_pending_age_seconds > 5);
      k.oldest.box.classList.toggle('bad', o.oldest_pending_age_seconds !== null && o.oldest_pending_age_seconds > 60);
      k.workers.v.textContent = fmtInt(o.workers.length);
      const pinned = o.partitions.filter((p) => p.pinned).length;
      k.workers.n.textContent = o.workers.length ? `${pinned} of ${o.partitions.length} partitions pinned` : 'no live worker';
      k.workers.box.classList.toggle('bad', o.workers.length === 0);
      k.dead.v.textContent = fmtInt(o.dead_letters.total);
      k.dead.n.textContent = o.dead_letters.last_at ? `last ${fmtAgo(sinceSeconds(o.dead_letters.last_at))} ago` : 'none stored';
      k.dead.box.classList.toggle('bad', o.dead_letters.total > 0);

      drawChart(chartBox, rates, new Date(o.at).getTime());
      renderPartitions(o);
      renderWorkers(o);
      renderDead(o.dead_letters);
    }

    function renderPartitions(o) {
      partsMeta.textContent = `${o.partitions.length} partitions · ${fmtInt(o.stored)} requests stored · ${fmtInt(o.accepted)} accepted in all`;
      const at = new Date(o.at).getTime();
      partsBox.replaceChildren(...o.partitions.map((p) => {
        const age = p.oldest_pending_at ? (at - new Date(p.oldest_pending_at).getTime()) / 1000 : null;
        const cls = ['part'];
        if (!p.exists) cls.push('missing');
        else if (age !== null && age > 30) cls.push('late');
        else if (p.pending > 0) cls.push('busy');
        const owner = p.owner || 'unassigned';
        const tip = [
          `${p.consumer}`, `pending ${p.pending} (waiting ${p.waiting}, delivered unacked ${p.ack_pending})`,
          `redelivered ${p.redelivered}`, `ack floor ${p.ack_floor}`, `owner ${owner}`,
          p.pinned ? `pinned since ${fmtTime(p.pinned_at)}` : 'not pinned',
          age !== null ? `oldest pending ${fmtAgo(age)}` : '',
          p.exists ? '' : 'no consumer yet (no worker has started)',
        ].filter(Boolean).join('\n');
        const node = el('div', { class: cls.join(' '), title: tip, 'data-partition': p.partition, 'data-owner': p.owner || '' },
          el('div', { class: 'p' }, el('span', { text: `p${String(p.partition).padStart(2, '0')}` }),
            el('span', { class: `pin ${p.pinned ? '' : 'off'}`, title: p.pinned ? 'pinned' : 'not pinned' })),
          el('div', { class: 'n', text: fmtInt(p.pending) }),
          el('div', { class: 'o', text: age !== null ? `${fmtAgo(age)} · ${owner}` : owner }));
        if (p.owner) node.style.setProperty('--owner', hue(p.owner));
        return node;
      }));
    }

    function renderWorkers(o) {
      if (!o.workers.length) {
        workersBox.replaceChildren(el('p', { class: 'empty', text: 'No worker has a live heartbeat: nothing is being applied.' }));
        return;
      }
      const at = new Date(o.at).getTime();
      workersBox.replaceChildren(el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', { text: 'Worker' }), el('th', { class: 'num', text: 'Last heartbeat' }),
          el('th', { class: 'num', text: 'Partitions' }), el('th', { class: 'hide-sm', text: 'Which' }))),
        el('tbody', {}, o.workers.map((w) => el('tr', {},
          el('td', { class: 'nowrap' }, el('span', { class: 'dot', style: `background:${hue(w.id)}` }), ' ', el('span', { class: 'mono', text: w.id })),
          el('td', { class: 'num', text: `${fmtAgo((at - new Date(w.last_seen).getTime()) / 1000)} ago` }),
          el('td', { class: 'num', text: String(w.partitions.length) }),
          el('td', { class: 'hide-sm mono', text: w.partitions.join(', ') })))))));
    }

    function renderDead(d) {
      if (d.total === 0) {
        deadBox.replaceChildren(el('p', { class: 'empty', text: 'No dead letters. Every stored request could be read.' }));
        return;
      }
      if (!d.by_reason) {
        deadBox.replaceChildren(el('p', { text: `${fmtInt(d.total)} dead letters: too many to count by reason here.` }));
        return;
      }
      const rows = Object.entries(d.by_reason).sort((a, b) => b[1] - a[1]);
      const top = rows.length ? rows[0][1] : 1;
      deadBox.replaceChildren(el('div', { class: 'bars' }, rows.map(([reason, n]) => el('div', { class: 'bar-row' },
        el('span', { class: 'name', text: reason }), el('span', { class: 'count', text: fmtInt(n) }),
        el('div', { class: 'track' }, el('div', { class: 'fill', style: `width:${Math.max(2, (100 * n) / top)}%` }))))));
    }

    const onVisible = () => { if (!document.hidden && current(gen) && timer === null) tick(); };
    const onResize = () => { if (last && current(gen)) drawChart(chartBox, last.rates || [], new Date(last.at).getTime()); };
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('resize', onResize);
    cleanup = () => {
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('resize', onResize);
    };
    tick();
  }

  // drawChart draws accepted/s and decided/s over the last 10 minutes as
  // SVG lines; a gap in the samples (nobody was looking) breaks the lines.
  function drawChart(box, rates, nowMs) {
    const width = Math.max(280, box.clientWidth || 600);
    const height = width < 500 ? 200 : 240;
    const pad = { l: 44, r: 10, t: 10, b: 24 };
    const x0 = nowMs - CHART_WINDOW_MS;
    const pts = rates.filter((r) => new Date(r.at).getTime() >= x0);
    let top = 0;
    for (const r of pts) top = Math.max(top, r.accepted_per_second, r.decided_per_second);
    top = niceCeil(top || 1);
    const X = (t) => pad.l + ((t - x0) / CHART_WINDOW_MS) * (width - pad.l - pad.r);
    const Y = (v) => pad.t + (1 - v / top) * (height - pad.t - pad.b);

    const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'Accepted and decided requests per second' });
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      root.append(svg('line', { class: 'grid-line', x1: pad.l, x2: width - pad.r, y1: Y(v), y2: Y(v) }));
      root.append(svg('text', { class: 'axis-label', x: pad.l - 6, y: Y(v) + 4, 'text-anchor': 'end', text: fmtRate(v) }));
    }
    for (let m = 10; m >= 0; m -= 2) {
      const t = nowMs - m * 60000;
      root.append(svg('text', { class: 'axis-label', x: X(t), y: height - 6, 'text-anchor': m === 10 ? 'start' : m === 0 ? 'end' : 'middle', text: m === 0 ? 'now' : `-${m}m` }));
    }
    const line = (field) => {
      let d = '';
      let prev = null;
      for (const r of pts) {
        const t = new Date(r.at).getTime();
        const gap = prev === null || r.seconds > 15;
        d += `${gap ? 'M' : 'L'}${X(t).toFixed(1)},${Y(r[field]).toFixed(1)}`;
        prev = t;
      }
      return d;
    };
    if (pts.length) {
      root.append(svg('path', { class: 'series accepted', d: line('accepted_per_second') }));
      root.append(svg('path', { class: 'series decided', d: line('decided_per_second') }));
    } else {
      root.append(svg('text', { class: 'axis-label', x: width / 2, y: height / 2, 'text-anchor': 'middle', text: 'Collecting samples…' }));
    }
    box.replaceChildren(root);
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    // Four grid intervals of a round size each.
    for (const m of [1, 2, 4, 6, 8, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---- Accounts ----------------------------------------------------------

  function accountPage(id, gen) {
    main.append(el('div', { class: 'page-head' },
      el('div', {}, el('h1', { text: id ? 'Account' : 'Accounts' }),
        el('div', { class: 'sub', text: 'Balances, statements and money movements.' }))));
    const lookup = el('form', { class: 'row', 'data-testid': 'account-lookup' },
      el('input', { name: 'id', placeholder: 'account id (uuid)', value: id || '', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Account id' }),
      el('button', { type: 'submit', class: 'primary', text: 'Open' }));
    lookup.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = lookup.elements.id.value.trim().toLowerCase();
      if (v) window.location.hash = `#/accounts/${encodeURIComponent(v)}`;
    });
    if (!id) {
      const list = el('div', { class: 'recent' }, el('p', { class: 'muted', text: 'Loading…' }));
      main.append(el('div', { class: 'grid halves' },
        card('Open an account', null, lookup),
        card('New account', 'needs a write token', newAccountForm())),
        card('Accounts', 'oldest first', list));
      loadAccounts(list, gen, null);
      return;
    }
    if (!UUID_RE.test(id)) {
      main.append(card('Open an account', null, lookup), card('Not an account id', null, el('p', { text: 'An account id is a UUID.' })));
      return;
    }
    const summary = el('div', {}, el('p', { class: 'muted', text: 'Loading…' }));
    const form = el('div', {});
    const statement = el('div', {});
    const holds = el('div', { class: 'vstack' });
    main.append(
      card('Open an account', null, lookup),
      el('div', { class: 'grid two' }, el('section', { class: 'card', id: 'account-summary' }, summary), card('Move money', 'needs a write token', form)),
      holds,
      el('section', { class: 'card', id: 'statement' }, statement));
    loadAccount(id, gen, summary, form, statement, holds);
  }

  async function loadAccounts(box, gen, cursor) {
    try {
      const r = await api(`v1/accounts?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (!current(gen)) return;
      if (!cursor) box.replaceChildren();
      else if (box.lastChild && box.lastChild.classList.contains('more')) box.lastChild.remove();
      if (!r.body.data.length && !cursor) box.append(el('p', { class: 'empty', text: 'No accounts yet.' }));
      for (const a of r.body.data) {
        box.append(el('a', { href: `#/accounts/${a.id}` }, el('span', { class: 'id', text: a.id }),
          el('span', { class: 'mono', text: `${a.balance} ${a.currency}` })));
      }
      if (r.body.next_cursor) {
        box.append(el('div', { class: 'more' }, el('button', { type: 'button', text: 'More', onclick: () => loadAccounts(box, gen, r.body.next_cursor) })));
      }
    } catch (e) {
      if (current(gen)) box.replaceChildren(el('p', { class: 'result bad', text: problemText(e) }));
    }
  }

  function newAccountForm() {
    const out = el('div', {});
    const currency = el('select', { name: 'currency', 'aria-label': 'Currency' });
    api('v1/currencies').then((r) => {
      for (const c of r.body.data) currency.append(el('option', { value: c.code, text: c.code }));
    }).catch(() => {});
    const f = el('form', { class: 'stack' },
      el('div', { class: 'row' }, currency, el('button', { type: 'submit', class: 'primary', text: 'Create account' })), out);
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const r = await api('v1/accounts', { method: 'POST', body: { currency: currency.value } });
        window.location.hash = `#/accounts/${r.body.id}`;
      } catch (e) {
        out.replaceChildren(el('div', { class: 'result bad', text: problemText(e) }));
      }
    });
    return f;
  }

  async function loadAccount(id, gen, summary, formBox, statement, holdsBox) {
    let acct;
    try {
      acct = (await api(`v1/accounts/${id}`)).body;
    } catch (e) {
      if (!current(gen)) return;
      summary.replaceChildren(el('p', { class: 'result bad', text: e.status === 404 ? 'No account has this id.' : problemText(e) }));
      return;
    }
    if (!current(gen)) return;
    renderSummary(summary, acct);
    formBox.replaceChildren(moveForm(acct, async () => {
      try {
        const fresh = (await api(`v1/accounts/${id}`)).body;
        if (current(gen)) renderSummary(summary, fresh);
      } catch (e) { /* the statement reload shows the problem */ }
      loadStatement(id, gen, statement, null);
    }));
    loadStatement(id, gen, statement, null);
    const p = await apiPaths();
    if (current(gen) && p.has('/v1/accounts/{id}/holds')) loadHolds(id, gen, holdsBox);
  }

  function renderSummary(box, a) {
    const amounts = el('div', { class: 'amounts' },
      el('div', {}, el('div', { class: 'label', text: 'Balance' }), el('div', { class: 'big', 'data-testid': 'balance', text: `${a.balance} ${a.currency}` })));
    if (a.available !== undefined) {
      amounts.append(el('div', {}, el('div', { class: 'label', text: 'Available' }), el('div', { class: 'big', 'data-testid': 'available', text: `${a.available} ${a.currency}` })));
    }
    box.replaceChildren(
      el('div', { class: 'card-head' }, el('h2', { text: 'Account' }), el('span', { class: 'meta', text: a.currency })),
      amounts,
      el('dl', { class: 'kv' },
        el('dt', { text: 'Id' }), el('dd', { class: 'mono', text: a.id }),
        el('dt', { text: 'Opened' }), el('dd', { text: fmtTime(a.created_at) }),
        el('dt', { text: 'Last change' }), el('dd', { text: fmtTime(a.updated_at) })));
  }

  // moveForm submits a transfer, deposit or withdrawal and waits up to 10 s
  // for the outcome. The request id is kept until the outcome is known, so
  // pressing the button again after a failure retries the same request
  // instead of moving the money twice.
  function moveForm(acct, onDecided) {
    let kind = 'transfer';
    let pendingId = null;
    let pendingKey = '';
    const seg = el('div', { class: 'segmented', role: 'group', 'aria-label': 'Kind' });
    const kinds = [['transfer', 'Transfer out'], ['deposit', 'Deposit'], ['withdrawal', 'Withdraw']];
    const buttons = kinds.map(([k, label]) => el('button', { type: 'button', 'data-kind': k, class: k === kind ? 'on' : '', text: label,
      onclick: () => { kind = k; for (const b of buttons) b.classList.toggle('on', b.dataset.kind === k); toRow.hidden = k !== 'transfer'; } }));
    seg.append(...buttons);
    const to = el('input', { name: 'to', placeholder: 'to account id', autocomplete: 'off', spellcheck: 'false' });
    const toRow = el('div', { class: 'field' }, el('label', { text: 'To account' }), to);
    const amount = el('input', { name: 'amount', placeholder: '0.00', inputmode: 'decimal', autocomplete: 'off' });
    const out = el('div', { 'data-testid': 'move-result' });
    const submit = el('button', { type: 'submit', class: 'primary', text: 'Submit' });
    const f = el('form', { class: 'stack', 'data-testid': 'move-form' },
      seg, toRow,
      el('div', { class: 'fields' },
        el('div', { class: 'field' }, el('label', { text: `Amount (${acct.currency})` }), amount)),
      el('div', { class: 'row' }, submit, el('span', { class: 'muted', text: 'Waits up to 10 s for the outcome.' })),
      out);
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const amt = amount.value.trim();
      const dest = to.value.trim().toLowerCase();
      if (!/^\d+(\.\d+)?$/.test(amt)) { out.replaceChildren(el('div', { class: 'result bad', text: 'Enter an amount such as 12.50.' })); return; }
      if (kind === 'transfer' && !UUID_RE.test(dest)) { out.replaceChildren(el('div', { class: 'result bad', text: 'Enter the receiving account id.' })); return; }
      const key = `${kind}|${dest}|${amt}`;
      if (key !== pendingKey) { pendingId = uuid4(); pendingKey = key; }
      const body = kind === 'transfer'
        ? { id: pendingId, from_account_id: acct.id, to_account_id: dest, amount: amt, currency: acct.currency }
        : { id: pendingId, account_id: acct.id, amount: amt, currency: acct.currency };
      const path = { transfer: 'v1/transfers', deposit: 'v1/deposits', withdrawal: 'v1/withdrawals' }[kind];
      submit.disabled = true;
      out.replaceChildren(el('div', { class: 'result wait', text: 'Submitted, waiting for the outcome…' }));
      try {
        const r = await api(path, { method: 'POST', body, headers: { Prefer: 'wait=10' }, accept: [422, 409] });
        const t = r.body.transfer || r.body;
        const link = el('a', { href: `#/transfers/${t.id}`, text: shortId(t.id) });
        if (t.status === 'applied') {
          out.replaceChildren(el('div', { class: 'result ok', 'data-status': 'applied' }, `Applied: ${t.kind} ${t.amount} ${t.currency} · `, link));
        } else if (t.status === 'rejected') {
          out.replaceChildren(el('div', { class: 'result bad', 'data-status': 'rejected' }, `Rejected: ${t.reason} · `, link));
        } else if (r.status === 409) {
          out.replaceChildren(el('div', { class: 'result bad', text: problemText(new ApiError(409, r.body)) }));
        } else {
          out.replaceChildren(el('div', { class: 'result wait', 'data-status': 'pending' }, 'Accepted and still pending: follow it at ', link));
        }
        pendingId = null; pendingKey = '';
        amount.value = '';
        onDecided();
      } catch (e) {
        const retry = e.status === 0 || e.status >= 500 ? ' Press Submit again to retry the same request.' : '';
        if (!retry) { pendingId = null; pendingKey = ''; }
        out.replaceChildren(el('div', { class: 'result bad', text: problemText(e) + retry }));
      } finally {
        submit.disabled = false;
      }
    });
    return f;
  }

  async function loadStatement(id, gen, box, cursor) {
    let tbody = box.querySelector('tbody');
    if (!cursor || !tbody) {
      tbody = el('tbody', {});
      box.replaceChildren(
        el('div', { class: 'card-head' }, el('h2', { text: 'Statement' }), el('span', { class: 'meta', text: 'newest first · running balance after each entry' })),
        el('div', { class: 'table-wrap' }, el('table', {},
          el('thead', {}, el('tr', {}, el('th', { text: 'When' }), el('th', { class: 'hide-sm', text: 'Kind' }), el('th', { class: 'hide-sm', text: 'Counterparty' }),
            el('th', { class: 'num', text: 'Amount' }), el('th', { class: 'num', text: 'Balance' }))),
          tbody)));
    }
    const old = box.querySelector('.more');
    if (old) old.remove();
    try {
      const r = await api(`v1/accounts/${id}/entries?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (!current(gen)) return;
      if (!r.body.data.length && !cursor) {
        tbody.append(el('tr', {}, el('td', { colspan: 5, class: 'empty', text: 'No entries yet.' })));
      }
      for (const e of r.body.data) {
        const sign = e.direction === 'credit' ? '+' : '−';
        tbody.append(el('tr', { class: 'clickable', onclick: () => { window.location.hash = `#/transfers/${e.transfer_id}`; } },
          el('td', { class: 'nowrap', text: fmtShort(e.created_at) }),
          el('td', { class: 'hide-sm' }, el('a', { href: `#/transfers/${e.transfer_id}`, text: e.kind })),
          el('td', { class: 'hide-sm mono' }, e.counterparty_account_id
            ? el('a', { href: `#/accounts/${e.counterparty_account_id}`, text: shortId(e.counterparty_account_id) }) : '-'),
          el('td', { class: `num ${e.direction}`, text: `${sign}${e.amount}` }),
          el('td', { class: 'num', text: e.balance_after })));
      }
      if (r.body.next_cursor) {
        box.append(el('div', { class: 'more' }, el('button', { type: 'button', text: 'Older entries', onclick: () => loadStatement(id, gen, box, r.body.next_cursor) })));
      }
    } catch (e) {
      if (current(gen)) box.append(el('p', { class: 'result bad', text: problemText(e) }));
    }
  }

  async function loadHolds(id, gen, box) {
    try {
      const r = await api(`v1/accounts/${id}/holds`);
      if (!current(gen)) return;
      box.replaceChildren(card('Holds', 'money reserved until posted, voided or expired', genericTable(r.body.data || [])));
    } catch (e) {
      if (current(gen)) box.replaceChildren(card('Holds', null, el('p', { class: 'result bad', text: problemText(e) })));
    }
  }

  // genericTable shows objects whose fields this console does not know in
  // advance (endpoints newer than it).
  function genericTable(rows) {
    if (!rows.length) return el('p', { class: 'empty', text: 'None.' });
    const cols = Object.keys(rows[0]);
    return el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', { text: c.replace(/_/g, ' ') })))),
      el('tbody', {}, rows.map((r) => el('tr', {}, cols.map((c) => el('td', { class: 'wrap', text: r[c] === null || r[c] === undefined ? '-' : String(r[c]) })))))));
  }

  // ---- Transfers ---------------------------------------------------------

  function transferPage(id, gen) {
    main.append(el('div', { class: 'page-head' },
      el('div', {}, el('h1', { text: 'Transfer' }),
        el('div', { class: 'sub', text: 'Look a request up by its id: transfers, deposits and withdrawals.' }))));
    const lookup = el('form', { class: 'row' },
      el('input', { name: 'id', placeholder: 'transfer id (uuid)', value: id || '', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Transfer id' }),
      el('button', { type: 'submit', class: 'primary', text: 'Look up' }));
    lookup.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = lookup.elements.id.value.trim().toLowerCase();
      if (v) window.location.hash = `#/transfers/${encodeURIComponent(v)}`;
    });
    main.append(card('Find a transfer', null, lookup));
    if (!id) return;
    if (!UUID_RE.test(id)) {
      main.append(card('Not a transfer id', null, el('p', { text: 'A transfer id is a UUID.' })));
      return;
    }
    const box = el('div', { class: 'vstack' }, card('Loading', null, el('p', { class: 'muted', text: 'Loading…' })));
    main.append(box);
    loadTransfer(id, gen, box);
  }

  async function loadTransfer(id, gen, box) {
    let t;
    try {
      t = (await api(`v1/transfers/${id}`)).body;
    } catch (e) {
      if (current(gen)) box.replaceChildren(card('Transfer', null, el('p', { class: 'result bad', text: e.status === 404 ? 'No request with this id was accepted.' : problemText(e) })));
      return;
    }
    if (!current(gen)) return;
    const acct = (a) => el('a', { class: 'mono', href: `#/accounts/${a}`, text: a });
    const details = el('dl', { class: 'kv' },
      el('dt', { text: 'Id' }), el('dd', { class: 'mono', text: t.id }),
      el('dt', { text: 'Kind' }), el('dd', { text: t.kind }),
      el('dt', { text: 'Amount' }), el('dd', { class: 'big', text: `${t.amount} ${t.currency}` }));
    if (t.from_account_id) details.append(el('dt', { text: 'From' }), el('dd', {}, acct(t.from_account_id)));
    if (t.to_account_id) details.append(el('dt', { text: 'To' }), el('dd', {}, acct(t.to_account_id)));
    if (t.account_id) details.append(el('dt', { text: 'Account' }), el('dd', {}, acct(t.account_id)));
    if (t.reason) details.append(el('dt', { text: 'Reason' }), el('dd', {}, badge(t.reason, 'reason')));

    const decided = t.status !== 'pending';
    const took = t.accepted_at && t.processed_at ? (new Date(t.processed_at) - new Date(t.accepted_at)) / 1000 : null;
    const timeline = el('ol', { class: 'timeline' },
      el('li', {}, el('div', { text: 'Accepted: stored in the requests stream' }), el('div', { class: 'when', text: fmtTime(t.accepted_at) })),
      el('li', { class: decided ? '' : 'todo' },
        el('div', { text: decided ? `Decided: ${t.status}${t.reason ? ` (${t.reason})` : ''}` : 'Waiting for a worker to decide' }),
        el('div', { class: 'when', text: decided ? `${fmtTime(t.processed_at)}${took !== null ? ` · ${fmtAgo(took)} after acceptance` : ''}` : 'followed live' })));

    const entries = el('div', {}, el('p', { class: 'muted', text: t.status === 'applied' ? 'Loading…' : 'No entries: nothing was applied.' }));
    const reversals = el('div', { class: 'vstack' });
    box.replaceChildren(
      el('div', { class: 'grid two' },
        el('section', { class: 'card', 'data-testid': 'transfer' },
          el('div', { class: 'card-head' }, el('h2', { text: 'Request' }), badge(t.status, t.status)), details),
        card('Timeline', null, timeline)),
      card('Entries', 'the ledger lines this request wrote', entries),
      reversals);
    if (!decided) {
      // Follow a pending request until a worker decides it.
      setTimeout(() => { if (current(gen)) loadTransfer(id, gen, box); }, 1000);
    }
    if (t.status === 'applied') loadTransferEntries(t, gen, entries);
    const p = await apiPaths();
    if (current(gen) && p.has('/v1/transfers/{id}/reversals')) {
      try {
        const r = await api(`v1/transfers/${id}/reversals`);
        if (current(gen)) reversals.replaceChildren(card('Reversals', null, genericTable(r.body.data || [])));
      } catch (e) {
        if (current(gen)) reversals.replaceChildren(card('Reversals', null, el('p', { class: 'result bad', text: problemText(e) })));
      }
    }
  }

  // The statement is kept per account, so a transfer's entries are found
  // in its accounts' recent statements (the latest 200 entries of each).
  async function loadTransferEntries(t, gen, box) {
    const accounts = [t.from_account_id, t.to_account_id, t.account_id].filter(Boolean);
    const rows = [];
    let missed = false;
    for (const a of accounts) {
      try {
        const r = await api(`v1/accounts/${a}/entries?limit=200`);
        const found = r.body.data.filter((e) => e.transfer_id === t.id);
        if (!found.length) missed = true;
        for (const e of found) rows.push({ account: a, e });
      } catch (e) {
        missed = true;
      }
    }
    if (!current(gen)) return;
    const table = el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, el('th', { text: 'Account' }), el('th', { class: 'hide-sm', text: 'Direction' }), el('th', { class: 'num', text: 'Amount' }), el('th', { class: 'num', text: 'Balance after' }))),
      el('tbody', {}, rows.map(({ account, e }) => el('tr', {},
        el('td', {}, el('a', { class: 'mono', href: `#/accounts/${account}`, text: shortId(account) })),
        el('td', { class: 'hide-sm', text: e.direction }),
        el('td', { class: `num ${e.direction}`, text: `${e.direction === 'credit' ? '+' : '−'}${e.amount} ${e.currency}` }),
        el('td', { class: 'num', text: e.balance_after }))))));
    box.replaceChildren(rows.length ? table : el('p', { class: 'empty', text: 'Not among the accounts’ latest 200 entries: see their statements.' }));
    if (rows.length && missed) box.append(el('p', { class: 'muted', text: 'Some entries are older than the accounts’ latest 200 entries: see their statements.' }));
  }

  // ---- Dead letters ------------------------------------------------------

  function deadLettersPage(seq, gen) {
    main.append(el('div', { class: 'page-head' },
      el('div', {}, el('h1', { text: seq ? `Dead letter ${seq}` : 'Dead letters' }),
        el('div', { class: 'sub', text: 'Messages the workers could not read as requests, with why. Nothing here was applied.' }))));
    if (seq) {
      const box = el('div', { class: 'vstack' }, card('Loading', null, el('p', { class: 'muted', text: 'Loading…' })));
      main.append(el('p', { class: 'back' }, el('a', { href: '#/dead-letters', text: '← All dead letters' })), box);
      loadDeadLetter(seq, gen, box);
      return;
    }
    const tbody = el('tbody', {});
    const box = el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', { text: 'Newest first' })),
      el('div', { class: 'table-wrap' }, el('table', { 'data-testid': 'dead-letters' },
        el('thead', {}, el('tr', {}, el('th', { class: 'hide-sm', text: 'Seq' }), el('th', { text: 'Stored' }), el('th', { text: 'Reason' }),
          el('th', { text: 'Detail' }), el('th', { class: 'hide-sm', text: 'Original subject' }))),
        tbody)));
    main.append(box);
    loadDeadLetters(gen, box, tbody, null);
  }

  async function loadDeadLetters(gen, box, tbody, cursor) {
    const old = box.querySelector('.more');
    if (old) old.remove();
    try {
      const r = await api(`v1/ops/dead-letters?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (!current(gen)) return;
      if (!r.body.data.length && !cursor) {
        tbody.append(el('tr', {}, el('td', { colspan: 5, class: 'empty', text: 'No dead letters.' })));
      }
      for (const d of r.body.data) {
        const open = () => { window.location.hash = `#/dead-letters/${d.seq}`; };
        tbody.append(el('tr', { class: 'clickable', onclick: open },
          el('td', { class: 'hide-sm' }, el('a', { href: `#/dead-letters/${d.seq}`, text: String(d.seq) })),
          el('td', { class: 'nowrap', text: fmtShort(d.stored_at) }),
          el('td', {}, badge(d.reason, 'reason')),
          el('td', { class: 'wrap', text: d.detail || '-' }),
          el('td', { class: 'hide-sm mono wrap', text: d.original_subject || '-' })));
      }
      if (r.body.next_cursor) {
        box.append(el('div', { class: 'more' }, el('button', { type: 'button', text: 'Older', onclick: () => loadDeadLetters(gen, box, tbody, r.body.next_cursor) })));
      }
    } catch (e) {
      if (current(gen)) box.append(el('p', { class: 'result bad', text: problemText(e) }));
    }
  }

  async function loadDeadLetter(seq, gen, box) {
    let d;
    try {
      d = (await api(`v1/ops/dead-letters/${encodeURIComponent(seq)}`)).body;
    } catch (e) {
      if (current(gen)) box.replaceChildren(card('Dead letter', null, el('p', { class: 'result bad', text: e.status === 404 ? 'The dead-letter stream no longer holds this message.' : problemText(e) })));
      return;
    }
    if (!current(gen)) return;
    const kv = el('dl', { class: 'kv' });
    const add = (k, v, mono) => kv.append(el('dt', { text: k }), el('dd', { class: mono ? 'mono' : '', text: v === null || v === undefined || v === '' ? '-' : String(v) }));
    kv.append(el('dt', { text: 'Reason' }), el('dd', {}, badge(d.reason, 'reason')));
    add('Detail', d.detail);
    add('Stored', fmtTime(d.stored_at));
    add('Accepted', fmtTime(d.accepted_at));
    add('Original subject', d.original_subject, true);
    add('Original sequence', d.original_seq, true);
    add('Original message id', d.original_msg_id, true);
    add('Trace id', d.trace_id, true);
    add('Original size', `${fmtInt(d.original_size)} bytes${d.truncated ? ` (first ${fmtInt(d.body_base64 ? atob(d.body_base64).length : 0)} kept)` : ''}`);
    add('SHA-256', d.original_sha256, true);
    let asText = true;
    const pre = el('pre', { class: 'body', 'data-testid': 'dead-letter-body' });
    const show = () => { pre.textContent = asText ? prettyBody(d.body || '') : (d.body_base64 || ''); };
    show();
    const toggle = el('div', { class: 'segmented' },
      el('button', { type: 'button', class: 'on', text: 'Text', onclick: (ev) => { asText = true; flip(ev); } }),
      el('button', { type: 'button', text: 'Base64', onclick: (ev) => { asText = false; flip(ev); } }));
    function flip(ev) {
      for (const b of toggle.children) b.classList.toggle('on', b === ev.currentTarget);
      show();
    }
    box.replaceChildren(
      el('div', { class: 'grid halves' },
        card('Message', null, kv),
        el('section', { class: 'card' },
          el('div', { class: 'card-head' }, el('h2', { text: 'Body' }), toggle),
          d.body ? pre : el('p', { class: 'empty', text: 'The dead letter carries no body.' }))));
  }

  function prettyBody(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  // ---- start -------------------------------------------------------------

  refreshTokenLabel();
  route();
})();
