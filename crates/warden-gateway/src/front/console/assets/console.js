/* Warden operator console: the page served by the admin listener at /console/.
 *
 * No framework and no build step. The page runs under a strict Content-Security-Policy
 * (script and style from 'self' only), so every element is built with the DOM API, and
 * everything the gateway sends (tool arguments, descriptions, reasons: text an attacker
 * may have written) lands in text nodes, with invisible characters shown as tokens.
 */
(function () {
  'use strict';

  const API = '/console/api';
  const state = {
    session: null,   // the /console/api/session body while signed in
    events: null,    // the EventSource
    retry: null,     // timer that reopens a closed EventSource
    page: null,      // {name, ctx, refresh}
    skew: 0,         // server clock minus browser clock, in ms
    toolFilter: '',
    audit: { since: '', until: '', principal: '', server: '', tool: '', decision: '', outcome: '', event: '' },
  };
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- text that hides nothing

  // What a reader cannot see, or what changes how the text around it reads: controls
  // (except newline and tab), format characters (zero-width, bidi, tags), private use,
  // unassigned, lone surrogates, line/paragraph separators, non-ASCII spaces, and the
  // fillers and variation selectors Warden's definition scanner also treats as invisible.
  const HIDDEN = /(?![\n\t ])[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Z}\u115F\u1160\u3164\uFFA0\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;

  function escToken(codePoint) {
    const token = document.createElement('span');
    token.className = 'esc';
    token.textContent = '\\u{' + codePoint.toString(16).toUpperCase().padStart(4, '0') + '}';
    return token;
  }

  // The string as text nodes, each hidden character replaced by a visible \u{XXXX} token.
  function visible(s) {
    const text = String(s);
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(HIDDEN)) {
      if (m.index > last) frag.append(text.slice(last, m.index));
      frag.append(escToken(m[0].codePointAt(0)));
      last = m.index + m[0].length;
    }
    if (last < text.length) frag.append(text.slice(last));
    return frag;
  }

  // el('div', {class: 'card', testid: 'x', 'data-id': id, onclick: fn}, ...children).
  // String children always go through visible(), so data can be passed as it comes.
  function el(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  }

  function svg(tag, attrs, ...children) {
    return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
  }

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key === 'testid' ? 'data-testid' : key, value === true ? '' : String(value));
    }
    return add(node, children);
  }

  function add(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : visible(child));
    }
    return node;
  }

  function button(label, attrs, onclick) {
    return el('button', Object.assign({ type: 'button', onclick }, attrs), label);
  }

  function say(node, text) {
    if (!node) return;
    node.replaceChildren(visible(text || ''));
    node.hidden = !text;
  }

  // ---------------------------------------------------------------- JSON, pretty and folded

  const FOLD_AT = 200;

  // A JSON string literal as it reads: quotes, backslashes, newlines and tabs escaped as JSON
  // does; every other control character is left for visible() to show as a token.
  function quote(s) {
    return s.replace(/["\\]/g, '\\$&').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  }

  // Plain text is gathered and flushed through visible() in one piece; fold toggles are nodes.
  function textSink(parent) {
    let buffer = '';
    const flush = () => { if (buffer) parent.append(visible(buffer)); buffer = ''; };
    return {
      text(s) { buffer += s; },
      node(n) { flush(); parent.append(n); },
      end: flush,
    };
  }

  // A string longer than FOLD_AT characters shows its start and a "show all (N chars)" toggle.
  function foldedString(s, sink, escape) {
    const chars = Array.from(s);
    if (chars.length <= FOLD_AT) { sink.text(escape(s)); return; }
    sink.text(escape(chars.slice(0, FOLD_AT).join('')));
    const rest = el('span', { class: 'rest', hidden: true });
    const toggle = button('… show all (' + chars.length + ' chars)', { class: 'fold' }, () => {
      if (!rest.firstChild) rest.append(visible(escape(chars.slice(FOLD_AT).join(''))));
      rest.hidden = !rest.hidden;
      toggle.textContent = rest.hidden ? '… show all (' + chars.length + ' chars)' : ' show less';
    });
    sink.node(el('span', { class: 'folded' }, rest, toggle));
  }

  function writeJson(value, depth, sink) {
    const pad = (n) => '\n' + '  '.repeat(n);
    if (typeof value === 'string') {
      sink.text('"'); foldedString(value, sink, quote); sink.text('"');
    } else if (value === null || typeof value !== 'object') {
      sink.text(JSON.stringify(value) ?? 'null');
    } else {
      const isArray = Array.isArray(value);
      const entries = isArray ? value.map((v) => [null, v]) : Object.entries(value);
      if (!entries.length) { sink.text(isArray ? '[]' : '{}'); return; }
      sink.text(isArray ? '[' : '{');
      entries.forEach(([key, v], i) => {
        sink.text(pad(depth + 1));
        if (!isArray) sink.text('"' + quote(key) + '": ');
        writeJson(v, depth + 1, sink);
        if (i < entries.length - 1) sink.text(',');
      });
      sink.text(pad(depth) + (isArray ? ']' : '}'));
    }
  }

  // A <pre> of the value as 2-space JSON, long strings folded, hidden characters shown.
  function jsonView(value, testid) {
    const pre = el('pre', { class: 'json', testid });
    const sink = textSink(pre);
    writeJson(value === undefined ? null : value, 0, sink);
    sink.end();
    return pre;
  }

  // A short JSON value inline (changes list): compact, long strings folded.
  function inlineValue(value) {
    if (value === null || value === undefined) return el('span', { class: 'muted' }, '(none)');
    const code = el('code');
    const sink = textSink(code);
    foldedString(JSON.stringify(value), sink, (s) => s);
    sink.end();
    return code;
  }

  // ---------------------------------------------------------------- time

  const serverNow = () => Date.now() + state.skew;

  function syncClock(now) {
    const t = Date.parse(now);
    if (Number.isFinite(t)) state.skew = t - Date.now();
  }

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const two = (n) => String(n).padStart(2, '0');
    if (h) return h + 'h ' + two(m) + 'm';
    if (m) return m + 'm ' + two(sec) + 's';
    return sec + 's';
  }

  function when(rfc3339) {
    if (!rfc3339) return '';
    const d = new Date(rfc3339);
    if (Number.isNaN(d.getTime())) return String(rfc3339);
    const two = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate()) + ' ' +
      two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }

  function timeEl(rfc3339) {
    return el('time', { datetime: rfc3339, title: rfc3339 }, when(rfc3339));
  }

  // Elements with data-since / data-until count from the server's clock, once a second.
  function tickOne(node) {
    const now = serverNow();
    if (node.dataset.since) node.textContent = duration(now - Date.parse(node.dataset.since));
    if (node.dataset.until) {
      const left = Date.parse(node.dataset.until) - now;
      node.textContent = left > 0 ? duration(left) : 'expired';
      node.classList.toggle('urgent', left < 60000);
    }
  }

  setInterval(() => document.querySelectorAll('[data-since],[data-until]').forEach(tickOne), 1000);

  function ticker(attr, rfc3339) {
    const node = el('span', { class: 'tick', [attr]: rfc3339 });
    tickOne(node);
    return node;
  }

  // ---------------------------------------------------------------- talking to the gateway

  class ApiError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  // GETs and JSON POSTs on the console's own origin. POSTs carry the session's CSRF token.
  // A 401 means the session is gone: the sign-in panel comes back (unless the caller is
  // the sign-in itself, which shows its own error).
  async function api(path, { method = 'GET', body, quiet401 = false } = {}) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      if (state.session && state.session.csrf) headers['X-Warden-CSRF'] = state.session.csrf;
      init.body = JSON.stringify(body || {});
    }
    let res;
    try { res = await fetch(path, init); }
    catch (e) { throw new ApiError(0, 'Warden cannot be reached (' + e.message + ')'); }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (res.ok) return data;
    const message = data && typeof data.error === 'string' ? data.error : res.status + ' ' + res.statusText;
    const error = new ApiError(res.status, message, data);
    // The sign-in panel replaces the page; nothing else needs to show this error.
    error.sessionLost = res.status === 401 && !quiet401;
    if (error.sessionLost) checkSession();
    throw error;
  }

  const post = (path, body) => api(path, { method: 'POST', body });

  // Runs fn with the buttons disabled; its error, if any, is shown in `message`. Buttons
  // marked .locked (your own call) stay disabled.
  async function guarded(buttons, message, fn) {
    buttons.forEach((b) => { b.disabled = true; });
    say(message, '');
    try {
      await fn();
      return null;
    } catch (e) {
      if (!e.sessionLost) say(message, e.message);
      buttons.forEach((b) => { b.disabled = b.classList.contains('locked'); });
      return e;
    }
  }

  // Runs fn once at a time; a call that arrives meanwhile runs once more afterwards, so a
  // burst of live events costs at most two fetches.
  function coalesce(fn) {
    let running = null, again = false;
    return function run() {
      if (running) { again = true; return running; }
      running = Promise.resolve().then(fn).finally(() => {
        running = null;
        if (again) { again = false; run(); }
      });
      return running;
    };
  }

  // ---------------------------------------------------------------- session and sign-in

  async function checkSession() {
    try {
      const session = await api(API + '/session', { quiet401: true });
      if (!state.session) enterShell(session);
      else state.session = session;   // still signed in; the CSRF token may have changed
      return true;
    } catch (e) {
      if (e.status === 401) showSignIn((e.body && e.body.signIn) || { oidc: true, apiKey: true });
      else if (!state.session) showFatal(e);
      return false;
    }
  }

  function showSignIn(signIn) {
    state.session = null;
    closeEvents();
    leavePage();
    $('nav').hidden = true;
    $('who').hidden = true;
    $('main').hidden = true;
    $('main').replaceChildren();
    $('signin-oidc').hidden = !signIn.oidc;
    $('signin-key').hidden = !signIn.apiKey;
    $('signin-none').hidden = Boolean(signIn.oidc || signIn.apiKey);
    $('signin').hidden = false;
    if (signIn.apiKey) $('signin-key-input').focus();
  }

  function enterShell(session) {
    state.session = session;
    $('signin').hidden = true;
    say($('signin-error'), '');
    $('operator').replaceChildren(visible(session.subject || ''));
    $('operator').title = [session.tenant && 'tenant ' + session.tenant, session.via === 'api_key' ? 'signed in with an API key' : 'signed in with single sign-on'].filter(Boolean).join(' · ');
    $('nav').hidden = false;
    $('who').hidden = false;
    $('main').hidden = false;
    connectEvents();
    route();
  }

  function showFatal(e) {
    $('main').hidden = false;
    $('main').replaceChildren(
      el('p', { class: 'message', role: 'alert' }, e.message),
      button('Try again', {}, () => { checkSession(); }));
  }

  async function signInWithKey(event) {
    event.preventDefault();
    const input = $('signin-key-input');
    const submit = event.target.querySelector('button[type=submit]');
    if (!input.value) return;
    const failed = await guarded([submit], $('signin-error'), async () => {
      const session = await api('/console/auth/key', { method: 'POST', body: { key: input.value }, quiet401: true });
      input.value = '';
      enterShell(session);
    });
    submit.disabled = false;
    if (failed) input.select();
  }

  async function signOut() {
    const signIn = (state.session && state.session.signIn) || { oidc: true, apiKey: true };
    try { await post('/console/auth/logout', {}); } catch (e) { /* signed out either way */ }
    showSignIn(signIn);
  }

  // ---------------------------------------------------------------- live events

  function setLive(text) {
    $('live-status').textContent = text;
    $('live-status').className = 'live is-' + text;
  }

  function setBadge(id, n) {
    const badge = $(id);
    badge.textContent = String(Number(n) || 0);
    badge.classList.toggle('zero', !n);
  }

  function closeEvents() {
    clearTimeout(state.retry);
    if (state.events) state.events.close();
    state.events = null;
  }

  function connectEvents() {
    closeEvents();
    const es = new EventSource(API + '/events');
    state.events = es;
    setLive('connecting');
    es.onopen = () => setLive('live');
    // The browser reconnects by itself after a dropped stream; it gives up (CLOSED) on an
    // HTTP error such as 401, and then the session decides whether to try again.
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) { setLive('reconnecting'); return; }
      setLive('offline');
      state.retry = setTimeout(async () => { if (await checkSession()) connectEvents(); }, 5000);
    };
    const on = (name, fn) => es.addEventListener(name, (e) => {
      let data = {};
      try { data = JSON.parse(e.data || '{}') || {}; } catch (err) { /* a malformed event only skips a refresh */ }
      fn(data);
    });
    on('approvals', (d) => { setBadge('pending-count', d.pending); refreshIf('approvals'); });
    on('reviews', (d) => { setBadge('review-count', (Number(d.held) || 0) + (Number(d.quarantined) || 0)); refreshIf('reviews'); });
    on('inventory', () => refreshIf('inventory'));
  }

  function refreshIf(name) {
    if (state.page && state.page.name === name) state.page.refresh();
  }

  // ---------------------------------------------------------------- pages and routing

  const PAGES = { approvals: approvalsPage, reviews: reviewsPage, inventory: inventoryPage, audit: auditPage, gates: gatesPage };

  function leavePage() {
    if (!state.page) return;
    state.page.ctx.alive = false;
    state.page.ctx.cleanup.forEach((fn) => fn());
    state.page = null;
  }

  function route() {
    if (!state.session) return;
    const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
    const page = Object.prototype.hasOwnProperty.call(PAGES, name) ? name : 'approvals';
    leavePage();
    document.querySelectorAll('#nav a').forEach((a) => {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    const main = $('main');
    const error = el('p', { class: 'message', role: 'alert', hidden: true });
    main.replaceChildren(error);
    // ctx.alive turns false when the operator moves on: late answers are then dropped.
    const ctx = { root: main, alive: true, cleanup: [], error, refresh: () => safe() };
    const args = rest.map((s) => { try { return decodeURIComponent(s); } catch (e) { return s; } });
    const refresh = PAGES[page](ctx, args);
    const safe = coalesce(() => refresh().then(() => { if (ctx.alive) say(error, ''); }, (e) => {
      if (ctx.alive && !e.sessionLost) say(error, e.message);
    }));
    state.page = { name: page, ctx, refresh: safe };
    safe();
  }

  function section(ctx, title, ...children) {
    const s = el('section', { class: 'block' }, el('h2', {}, title), ...children);
    ctx.root.append(s);
    return s;
  }

  function table(headings, body) {
    return el('div', { class: 'table-wrap' },
      el('table', {}, el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))), body));
  }

  function badge(text, kind) {
    return el('span', { class: 'pill ' + (kind || '') }, text);
  }

  function severityKind(s) {
    return { critical: 'bad', high: 'bad', medium: 'warn', low: 'info' }[String(s).toLowerCase()] || '';
  }

  // Keeps the cards whose key is still listed (typed reasons and open folds survive a live
  // refresh), adds new ones in order, and drops the rest, except cards that still show
  // the operator a message (.settled) until they are dismissed.
  function reconcile(box, cards, items, keyOf, make) {
    const listed = new Set();
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      listed.add(key);
      let card = cards.get(key);
      if (!card) { card = make(item); cards.set(key, card); }
      const slot = previous ? previous.nextSibling : box.firstChild;
      if (card !== slot) box.insertBefore(card, slot);
      previous = card;
    }
    for (const [key, card] of cards) {
      if (!listed.has(key) && !card.classList.contains('settled')) { card.remove(); cards.delete(key); }
    }
  }

  // A card whose item was settled elsewhere keeps its message and gains a dismiss button.
  function settle(card, buttons) {
    card.classList.add('settled');
    buttons.forEach((b) => { b.disabled = true; b.classList.add('locked'); });
    card.append(button('Dismiss', { class: 'link' }, () => card.remove()));
  }

  // ---------------------------------------------------------------- approvals

  function approvalsPage(ctx, [focusId]) {
    const note = el('p', { class: 'notice', hidden: true });
    const empty = el('p', { class: 'empty', hidden: true }, 'Nothing is waiting for a decision.');
    const box = el('div', { class: 'cards' });
    const historyBody = el('tbody');
    section(ctx, 'Pending approvals', note, empty, box);
    section(ctx, 'History', table(['When', 'Status', 'Server / tool', 'Caller', 'Decided by', 'Operator reason'], historyBody));
    const cards = new Map();
    let focused = !focusId;

    return async function refresh() {
      const [pending, history] = await Promise.all([
        api(API + '/approvals?status=pending'), api(API + '/approvals?status=history')]);
      if (!ctx.alive) return;
      syncClock(pending.now);
      const items = pending.approvals || [];
      setBadge('pending-count', items.length);
      reconcile(box, cards, items, (a) => a.id, (a) => approvalCard(a, ctx.refresh));
      empty.hidden = box.childElementCount > 0;
      historyBody.replaceChildren(...(history.approvals || []).map(historyRow));
      if (!focused) { focused = true; focusApproval(focusId, cards.get(focusId), history.approvals || [], note); }
    };
  }

  // #/approvals/{id}: a link from a notification. Point at the card, or say what became of it.
  function focusApproval(id, card, history, note) {
    if (card) {
      card.classList.add('focus');
      card.scrollIntoView({ block: 'center' });
      return;
    }
    const past = history.find((a) => a.id === id);
    say(note, past
      ? 'Approval ' + id + ' is no longer pending: ' + past.status + (past.decided_by ? ' by ' + past.decided_by : '') + (past.decided_at ? ' at ' + when(past.decided_at) : '') + '.'
      : 'Approval ' + id + ' was not found.');
  }

  function approvalCard(a, changed) {
    const message = el('p', { class: 'message', testid: 'approval-message', role: 'status', hidden: true });
    const reason = el('input', { type: 'text', testid: 'approval-reason-input', placeholder: 'reason (optional)', 'aria-label': 'Reason for the decision', maxlength: 500 });
    const approve = button(a.mine ? 'your own call' : 'Approve', {
      class: a.mine ? 'primary locked' : 'primary', testid: 'approve', disabled: Boolean(a.mine),
      title: a.mine ? 'Another operator must approve a call you made' : null,
    }, () => decide('approve'));
    const deny = button('Deny', { class: 'danger', testid: 'deny', disabled: Boolean(a.mine) }, () => decide('deny'));
    const reasons = (a.reasons || []).length ? el('ul', {}, a.reasons.map((r) => el('li', {}, r))) : el('p', { class: 'muted' }, 'no reason given');
    const caller = [a.actor_id, a.tenant && 'tenant ' + a.tenant, a.client_id && 'client ' + a.client_id].filter(Boolean).join(' · ');

    const card = el('article', { class: 'card', testid: 'approval-card', 'data-id': a.id },
      el('header', { class: 'card-head' },
        el('h3', { testid: 'approval-tool' }, a.server + ' / ' + a.tool),
        a.exposed && a.exposed !== a.tool ? el('span', { class: 'muted' }, 'exposed as ', a.exposed) : null,
        el('a', { class: 'permalink', href: '#/approvals/' + enc(a.id), title: 'Link to this approval' }, '#')),
      el('dl', { class: 'facts' },
        el('dt', {}, 'Caller'), el('dd', { testid: 'approval-caller' }, caller),
        el('dt', {}, 'Waited'), el('dd', {}, ticker('data-since', a.created_at)),
        el('dt', {}, 'Expires in'), el('dd', {}, ticker('data-until', a.expires_at)),
        a.flow ? [el('dt', {}, 'Flow'), el('dd', {}, a.flow)] : null,
        el('dt', {}, 'Request'), el('dd', { class: 'mono' }, a.request_id || '', a.session_id ? ' (session ' + a.session_id + ')' : '')),
      el('div', { class: 'reasons', testid: 'approval-reasons' }, el('h4', {}, 'Why it was held'), reasons),
      el('h4', {}, 'Arguments'),
      jsonView(a.arguments, 'approval-args'),
      el('div', { class: 'actions' }, reason, approve, deny),
      message);

    async function decide(verdict) {
      const failed = await guarded([approve, deny], message, () =>
        post(API + '/approvals/' + enc(a.id) + '/' + verdict, { reason: reason.value.trim() || null }));
      // 409: another operator decided first, or it expired. Keep the card to say so.
      if (failed && failed.status === 409) settle(card, [approve, deny]);
      if (!failed || failed.status === 409) changed();
    }
    return card;
  }

  function historyRow(a) {
    return el('tr', { testid: 'approval-history-row', 'data-id': a.id, 'data-status': a.status },
      el('td', {}, timeEl(a.decided_at || a.created_at)),
      el('td', {}, badge(a.status, { approved: 'ok', used: 'ok', denied: 'bad', revoked: 'bad' }[a.status] || '')),
      el('td', {}, a.server + ' / ' + a.tool),
      el('td', {}, a.actor_id || ''),
      el('td', {}, a.decided_by || ''),
      el('td', { class: 'wrap' }, a.reason || ''));
  }

  // ---------------------------------------------------------------- reviews

  function reviewsPage(ctx) {
    const defsEmpty = el('p', { class: 'empty', hidden: true }, 'No definition is held for review.');
    const defsBox = el('div', { class: 'cards wide' });
    const quarEmpty = el('p', { class: 'empty', hidden: true }, 'No result is quarantined.');
    const quarBox = el('div', { class: 'cards' });
    section(ctx, 'Held definitions', defsEmpty, defsBox);
    section(ctx, 'Quarantined results', quarEmpty, quarBox);
    const defCards = new Map(), quarCards = new Map();
    const changed = ctx.refresh;

    return async function refresh() {
      const data = await api(API + '/reviews');
      if (!ctx.alive) return;
      const defs = data.definitions || [], quarantine = data.quarantine || [];
      setBadge('review-count', defs.length + quarantine.length);
      reconcile(defsBox, defCards, defs, (d) => [d.server, d.kind, d.name, d.hash, d.reason].join('\u0000'), (d) => definitionCard(d, changed));
      reconcile(quarBox, quarCards, quarantine, (q) => q.id, (q) => quarantineCard(q, changed));
      defsEmpty.hidden = defsBox.childElementCount > 0;
      quarEmpty.hidden = quarBox.childElementCount > 0;
    };
  }

  function definitionCard(d, changed) {
    const message = el('p', { class: 'message', role: 'status', hidden: true });
    const accept = button('Accept', { class: 'primary', testid: 'accept-definition', title: 'Pin this definition: calls to it are allowed again' }, async () => {
      const failed = await guarded([accept, keep], message, () =>
        post(API + '/pins/' + enc(d.server) + '/accept', { kind: d.kind, name: d.name, hash: d.hash }));
      if (!failed) { card.remove(); changed(); }
    });
    // Keeping it held changes nothing on the gateway; the card folds out of the way.
    const keep = button('Keep held', { testid: 'keep-held' }, () => {
      card.classList.toggle('collapsed');
      keep.textContent = card.classList.contains('collapsed') ? 'Review again' : 'Keep held';
    });
    const findings = d.findings || [];
    const changes = d.changes || [];
    const source = d.new != null ? d.new : d.old;

    const card = el('article', { class: 'card', testid: 'definition-card', 'data-server': d.server, 'data-name': d.name },
      el('header', { class: 'card-head' },
        el('h3', {}, d.server + ' · ' + d.kind + ' · ' + (d.name || '')),
        badge(d.reason, { poisoned: 'bad', drift: 'warn', removed: 'warn', new: 'info' }[d.reason])),
      el('div', { class: 'body' },
        el('p', { class: 'muted' }, 'first seen ', timeEl(d.first_seen), ' · last seen ', timeEl(d.last_seen),
          d.hash ? [' · ', el('span', { class: 'mono', title: d.hash }, String(d.hash).slice(0, 16))] : null),
        findings.length ? [el('h4', {}, 'Findings'), el('ul', { class: 'findings' }, findings.map((f) => findingItem(f, source)))] : null,
        el('h4', {}, 'Definition'),
        diffView(d),
        changes.length ? [el('h4', {}, 'Changes'), el('ul', { class: 'changes' }, changes.map((c) =>
          el('li', {}, el('code', {}, c.pointer || '(whole definition)'), ': ', inlineValue(c.old), ' → ', inlineValue(c.new))))] : null),
      el('div', { class: 'actions' }, accept, keep),
      message);
    return card;
  }

  function findingItem(f, source) {
    const where = f.pointer ? [' at ', el('code', {}, f.pointer)] : null;
    return el('li', { class: 'finding', testid: 'finding' },
      el('div', {}, badge(f.severity, severityKind(f.severity)), ' ', el('code', {}, f.rule), f.family ? ' · ' + f.family : '', where),
      excerptView(f, source),
      f.explanation ? el('p', {}, f.explanation) : null,
      f.check ? el('p', { class: 'muted' }, 'Check: ', f.check) : null,
      f.decoded ? el('p', { class: 'decoded' }, 'hidden text, decoded: ', el('code', {}, f.decoded)) : null);
  }

  // The string an RFC 6901 pointer names in a definition. Warden's scanner marks a pointer
  // to an object key (not its value) with a trailing "~key"; the string is then the key.
  function pointerText(doc, pointer) {
    if (typeof pointer !== 'string') return null;
    if (pointer === '') return typeof doc === 'string' ? doc : null;
    const isKey = pointer.endsWith('~key');
    const tokens = (isKey ? pointer.slice(0, -4) : pointer).split('/').slice(1)
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (isKey) return tokens.length ? tokens[tokens.length - 1] : null;
    let node = doc;
    for (const t of tokens) {
      if (node === null || typeof node !== 'object' || !Object.prototype.hasOwnProperty.call(node, t)) return null;
      node = node[t];
    }
    return typeof node === 'string' ? node : null;
  }

  // The finding's span is a UTF-8 byte range in the string its pointer names (the excerpt
  // is already cut and escaped, so offsets into it would be wrong). With that string at hand
  // the match is shown highlighted in its context; otherwise the excerpt as the gateway wrote it.
  function excerptView(f, source) {
    const span = Array.isArray(f.span) ? f.span.map(Number) : null;
    const text = span && span[1] > span[0] ? pointerText(source, f.pointer) : null;
    const bytes = text === null ? null : new TextEncoder().encode(text);
    if (!bytes || span[0] < 0 || span[1] > bytes.length) {
      return f.excerpt ? el('pre', { class: 'excerpt' }, gatewayExcerpt(f.excerpt)) : null;
    }
    const utf8 = new TextDecoder();
    const before = Array.from(utf8.decode(bytes.subarray(0, span[0])));
    const after = Array.from(utf8.decode(bytes.subarray(span[1])));
    const pre = el('pre', { class: 'excerpt' }, before.length > 24 ? '…' + before.slice(-24).join('') : before.join(''));
    const mark = el('mark');
    const sink = textSink(mark);
    foldedString(utf8.decode(bytes.subarray(span[0], span[1])), sink, (s) => s);
    sink.end();
    return add(pre, [mark, after.length > 80 ? after.slice(0, 80).join('') + '…' : after.join('')]);
  }

  // The gateway's excerpt already spells hidden characters as \u{…}; style those as tokens
  // too (an escaped backslash "\\" is text, not the start of one).
  function gatewayExcerpt(s) {
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of s.matchAll(/\\\\|\\u\{([0-9a-fA-F]{1,6})\}/g)) {
      if (!m[1]) continue;
      frag.append(visible(s.slice(last, m.index)), escToken(parseInt(m[1], 16)));
      last = m.index + m[0].length;
    }
    frag.append(visible(s.slice(last)));
    return frag;
  }

  // ---------------------------------------------------------------- line diff

  // Instructions are plain text: diff their lines. Anything else: its pretty JSON.
  function linesOf(value) {
    return (typeof value === 'string' ? value : JSON.stringify(value, null, 2)).split('\n');
  }

  // Edit script by longest common subsequence, after trimming the common head and tail
  // (a drifted definition usually differs in a few lines, which keeps the table small).
  function lineDiff(a, b) {
    let head = 0;
    while (head < a.length && head < b.length && a[head] === b[head]) head++;
    let endA = a.length, endB = b.length;
    while (endA > head && endB > head && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    const ops = a.slice(0, head).map((line) => ['=', line, line]);
    const x = a.slice(head, endA), y = b.slice(head, endB);
    if (x.length * y.length > 4e6) {
      x.forEach((line) => ops.push(['-', line]));
      y.forEach((line) => ops.push(['+', line]));
    } else {
      // lcs[i][j]: length of the longest common subsequence of x[i..] and y[j..]
      const lcs = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
      for (let i = x.length - 1; i >= 0; i--) {
        for (let j = y.length - 1; j >= 0; j--) {
          lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
        }
      }
      let i = 0, j = 0;
      while (i < x.length && j < y.length) {
        if (x[i] === y[j]) { ops.push(['=', x[i++], y[j++]]); }
        else if (lcs[i + 1][j] >= lcs[i][j + 1]) ops.push(['-', x[i++]]);
        else ops.push(['+', y[j++]]);
      }
      while (i < x.length) ops.push(['-', x[i++]]);
      while (j < y.length) ops.push(['+', y[j++]]);
    }
    a.slice(endA).forEach((line) => ops.push(['=', line, line]));
    return ops;
  }

  // Side-by-side rows [left, leftClass, right, rightClass]: unchanged lines face each other,
  // a run of removed lines faces the run of added lines that replaced it.
  function diffRows(ops) {
    const rows = [];
    let dels = [], adds = [];
    const flush = () => {
      for (let k = 0; k < Math.max(dels.length, adds.length); k++) {
        rows.push([dels[k] ?? null, 'del', adds[k] ?? null, 'add']);
      }
      dels = []; adds = [];
    };
    for (const [op, line, other] of ops) {
      if (op === '-') dels.push(line);
      else if (op === '+') adds.push(line);
      else { flush(); rows.push([line, '', other, '']); }
    }
    flush();
    return rows;
  }

  function diffView(d) {
    let rows;
    if (d.old == null && d.new == null) rows = [];
    else if (d.old == null) rows = linesOf(d.new).map((line, i) => [i ? null : 'not pinned before', 'note', line, '']);
    else if (d.new == null) rows = linesOf(d.old).map((line, i) => [line, '', i ? null : 'the server no longer lists it', 'note']);
    else rows = diffRows(lineDiff(linesOf(d.old), linesOf(d.new)));
    const left = el('div', { class: 'diff-col old', testid: 'diff-old' }, el('div', { class: 'diff-title' }, 'pinned'));
    const right = el('div', { class: 'diff-col new', testid: 'diff-new' }, el('div', { class: 'diff-title' }, 'held'));
    // Both columns sit in one grid (display: contents), each line in its row, so a long
    // wrapped line on one side pushes the other side down with it.
    rows.forEach(([l, lc, r, rc], i) => {
      left.append(diffLine(l, lc, i + 2));
      right.append(diffLine(r, rc, i + 2));
    });
    return el('div', { class: 'diff' }, left, right);
  }

  function diffLine(text, kind, row) {
    const line = el('div', { class: 'line ' + (text === null ? 'pad' : kind) }, text === null ? '' : text);
    line.style.gridRow = String(row);   // CSSOM, not a style attribute: allowed by the CSP
    return line;
  }

  // ---------------------------------------------------------------- quarantine

  function quarantineCard(q, changed) {
    const message = el('p', { class: 'message', role: 'status', hidden: true });
    const content = el('div', { testid: 'quarantine-content', hidden: true });
    const show = button('Show content', { testid: 'quarantine-show' }, async () => {
      if (!content.hidden) { content.hidden = true; show.textContent = 'Show content'; return; }
      const failed = await guarded([show], message, async () => {
        const data = await api(API + '/quarantine/' + enc(q.id));
        content.replaceChildren(jsonView(data.item ? data.item.content : null));
      });
      show.disabled = false;
      if (!failed) { content.hidden = false; show.textContent = 'Hide content'; }
    });
    const act = (verb) => async () => {
      const failed = await guarded([release, discard], message, () => post(API + '/quarantine/' + enc(q.id) + '/' + verb, {}));
      if (failed && failed.status === 409) settle(card, [release, discard]);
      if (!failed || failed.status === 409) changed();
    };
    const release = button('Release', { class: 'primary', testid: 'release', title: 'Deliver the result to the client' }, act('release'));
    const discard = button('Discard', { class: 'danger', testid: 'discard' }, act('discard'));
    const card = el('article', { class: 'card', testid: 'quarantine-card', 'data-id': q.id },
      el('header', { class: 'card-head' }, el('h3', {}, q.server + ' · ' + q.method + (q.item ? ' · ' + q.item : '')), badge(q.severity, severityKind(q.severity))),
      el('p', { class: 'muted' }, 'held ', timeEl(q.created_at), ' · for ', q.actor_id || '?', q.tenant ? ' · tenant ' + q.tenant : ''),
      (q.findings || []).length ? el('ul', { class: 'findings' }, q.findings.map((f) => findingItem(f, null))) : null,
      el('div', { class: 'actions' }, show, release, discard),
      content,
      message);
    return card;
  }

  // ---------------------------------------------------------------- inventory

  function inventoryPage(ctx) {
    const banner = el('p', { class: 'notice bad', hidden: true }, 'Emergency stop is on: Warden refuses every tool call.');
    const serverBody = el('tbody');
    const toolBody = el('tbody');
    const filter = el('input', { type: 'search', placeholder: 'filter by server, tool or class', 'aria-label': 'Filter tools', value: state.toolFilter });
    ctx.root.append(banner);
    section(ctx, 'Servers', table(['Server', 'State', '', 'Transport', 'Endpoint', 'Sandbox', 'Era', 'Trusted', 'Pinned', 'Held', 'Calls 1h', 'Refusals 1h'], serverBody));
    section(ctx, 'Tools', el('div', { class: 'filter' }, filter),
      table(['Server', 'Tool', 'Class', 'Approval', 'Scopes', 'Flags', 'Pin', 'Calls 1h', 'Refusals 1h'], toolBody));
    let tools = [];
    const drawTools = () => {
      const words = state.toolFilter.toLowerCase().split(/\s+/).filter(Boolean);
      const match = (t) => words.every((w) => [t.server, t.name, t.class, t.approval].join(' ').toLowerCase().includes(w));
      toolBody.replaceChildren(...tools.filter(match).map(toolRow));
    };
    filter.addEventListener('input', () => { state.toolFilter = filter.value; drawTools(); });

    return async function refresh() {
      const inv = await api(API + '/inventory');
      if (!ctx.alive) return;
      banner.hidden = !inv.emergency;
      tools = inv.tools || [];
      serverBody.replaceChildren(...(inv.servers || []).map((s) => serverRow(s, tools.filter((t) => t.server === s.name), ctx)));
      drawTools();
    };
  }

  const yes = (b) => (b ? 'yes' : 'no');

  function serverRow(s, tools, ctx) {
    const action = s.contained
      ? button('Release', { testid: 'release-server', title: 'Calls to this server are allowed again' }, async (e) => {
        const failed = await guarded([e.target], ctx.error, () => post(API + '/servers/' + enc(s.name) + '/release', {}));
        if (!failed) ctx.refresh();
      })
      : button('Contain', { class: 'danger', testid: 'contain' }, () => openContain(s.name, tools, ctx.refresh));
    return el('tr', { testid: 'server-row', 'data-server': s.name, 'data-state': s.state },
      el('th', { scope: 'row' }, s.name),
      el('td', {}, badge(s.state, { contained: 'bad', connected: 'ok' }[s.state]), s.containedReason ? el('div', { class: 'muted wrap' }, s.containedReason) : null),
      // The action sits next to the state, in reach without scrolling the table on a phone.
      el('td', {}, action),
      el('td', {}, s.transport), el('td', { class: 'mono wrap' }, s.endpoint || ''), el('td', {}, s.sandbox), el('td', {}, s.era),
      el('td', {}, yes(s.trustedContent)), el('td', { class: 'num' }, s.pinned), el('td', { class: 'num' }, s.held),
      el('td', { class: 'num' }, s.calls1h), el('td', { class: 'num' }, s.refusals1h));
  }

  function toolRow(t) {
    const annotations = t.annotations && typeof t.annotations === 'object'
      ? Object.entries(t.annotations).filter(([, v]) => v === true).map(([k]) => k.replace(/Hint$/, '')) : [];
    const flags = [t.outOfBand && 'out-of-band', t.trustedContent && 'trusted content', t.adminOnly && 'admin only', ...annotations].filter(Boolean);
    return el('tr', { testid: 'tool-row', 'data-server': t.server, 'data-tool': t.name },
      el('td', {}, t.server), el('th', { scope: 'row' }, t.name),
      el('td', {}, badge(t.class, { irreversible: 'bad', write: 'warn' }[t.class])),
      el('td', {}, t.approval), el('td', { class: 'wrap' }, (t.scopes || []).join(' ')),
      el('td', { class: 'wrap' }, flags.join(', ')),
      el('td', {}, t.held ? badge('held: ' + t.held, 'warn') : (t.pinned ? 'pinned' : 'not pinned')),
      el('td', { class: 'num' }, t.calls1h), el('td', { class: 'num' }, t.refusals1h));
  }

  // The confirmation names what containment stops: every tool of the server (ten shown).
  function openContain(name, tools, done) {
    const dialog = $('contain-dialog');
    const shown = tools.slice(0, 10).map((t) => el('code', {}, t.name));
    const list = shown.flatMap((node, i) => (i ? [', ', node] : [node]));
    const more = tools.length > 10 ? ' and ' + (tools.length - 10) + ' more' : '';
    $('contain-title').replaceChildren(visible('Contain ' + name + '?'));
    $('contain-text').replaceChildren(add(document.createDocumentFragment(), [
      'Every call to its ' + tools.length + (tools.length === 1 ? ' tool' : ' tools'),
      tools.length ? [' (', list, more, ')'] : null,
      ' is refused and pending approvals for it are revoked until released.']));
    $('contain-reason').value = '';
    say($('contain-error'), '');
    $('contain-confirm').disabled = false;
    $('contain-form').onsubmit = async (e) => {
      e.preventDefault();
      const failed = await guarded([$('contain-confirm')], $('contain-error'), () =>
        post(API + '/servers/' + enc(name) + '/contain', { reason: $('contain-reason').value.trim() || null }));
      if (!failed) { dialog.close(); done(); }
    };
    dialog.showModal();
    $('contain-reason').focus();
  }

  // ---------------------------------------------------------------- audit

  const DECISIONS = ['ALLOW', 'DENY', 'REQUIRE_APPROVAL', 'APPROVED', 'DENIED', 'EXPIRED', 'REVOKED', 'AUTH_FAILED',
    'RATE_LIMITED', 'QUARANTINED', 'RELEASED', 'BLOCKED', 'REPORTED', 'TAINTED', 'REDACTED', 'CONTAINED', 'PINNED', 'FAILED'];
  const OUTCOMES = ['ok', 'refused', 'tool_error', 'error', 'timeout', 'held', 'quarantined', 'reported', 'tainted'];

  // datetime-local is the browser's local time; the API takes UTC RFC 3339.
  function toUtc(local) {
    const d = new Date(local);
    return local && !Number.isNaN(d.getTime()) ? d.toISOString().replace(/\.000Z$/, 'Z') : '';
  }

  function auditQuery(extra) {
    const f = state.audit, q = new URLSearchParams();
    const put = (k, v) => { if (v) q.set(k, v); };
    put('since', toUtc(f.since)); put('until', toUtc(f.until));
    ['principal', 'server', 'tool', 'decision', 'outcome', 'event'].forEach((k) => put(k, f[k].trim()));
    Object.entries(extra || {}).forEach(([k, v]) => put(k, v));
    return q.toString();
  }

  function auditPage(ctx) {
    const f = state.audit;
    const input = (key, attrs) => el('input', Object.assign({ value: f[key], 'aria-label': key, autocomplete: 'off' }, attrs));
    const fields = {
      since: input('since', { type: 'datetime-local', step: 1 }),
      until: input('until', { type: 'datetime-local', step: 1 }),
      principal: input('principal', { type: 'text', testid: 'audit-filter-principal' }),
      server: input('server', { type: 'text', testid: 'audit-filter-server' }),
      tool: input('tool', { type: 'text', testid: 'audit-filter-tool' }),
      decision: el('select', { testid: 'audit-filter-decision', 'aria-label': 'decision' },
        el('option', { value: '' }, 'any'), DECISIONS.map((d) => el('option', { value: d, selected: d === f.decision }, d))),
      outcome: input('outcome', { type: 'text', testid: 'audit-filter-outcome', list: 'audit-outcomes' }),
      event: input('event', { type: 'text' }),
    };
    const form = el('form', { class: 'filters' },
      Object.entries(fields).map(([k, field]) => el('label', {}, el('span', {}, k), field)),
      el('datalist', { id: 'audit-outcomes' }, OUTCOMES.map((o) => el('option', { value: o }))),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', testid: 'audit-apply' }, 'Apply'),
        el('a', { class: 'button', testid: 'audit-export', download: 'warden-audit.jsonl' }, 'Export JSONL')));
    const chain = el('p', { class: 'chain', testid: 'chain-status' }, 'checking the chain…');
    const body = el('tbody');
    const empty = el('p', { class: 'empty', hidden: true }, 'No audit row matches.');
    const more = button('Load more', { testid: 'audit-more', hidden: true }, () => load(true).catch((e) => say(ctx.error, e.message)));
    section(ctx, 'Audit log', chain, form, table(['Row', 'Time', 'Event', 'Principal', 'Server', 'Tool', 'Decision', 'Outcome', 'Reason', 'ms'], body), empty, more);
    let next = null;

    const exportLink = form.querySelector('[data-testid=audit-export]');
    const setExport = () => { const q = auditQuery(); exportLink.href = API + '/audit/export' + (q ? '?' + q : ''); };
    setExport();

    async function load(append) {
      const q = auditQuery({ before: append && next !== null ? String(next) : '', limit: '100' });
      more.disabled = true;
      const data = await api(API + '/audit?' + q).finally(() => { more.disabled = false; });
      if (!ctx.alive) return;
      const rows = (data.rows || []).map(auditRow);
      if (append) body.append(...rows); else body.replaceChildren(...rows);
      next = data.next ?? null;
      more.hidden = next === null;
      empty.hidden = body.childElementCount > 0;
    }

    async function loadChain() {
      const c = await api(API + '/chain');
      if (!ctx.alive) return;
      const checkpoint = c.lastCheckpoint ? 'last checkpoint at row ' + c.lastCheckpoint.seq + ', ' + when(c.lastCheckpoint.at) : 'no checkpoint yet';
      const text = c.ok === true ? 'chain verified up to row ' + c.verifiedUpTo
        : c.ok === false ? 'chain BROKEN' + (c.verifiedUpTo != null ? ' after row ' + c.verifiedUpTo : '') : 'chain not verified yet';
      say(chain, [text, c.rows + ' rows', checkpoint, c.ok === true ? '' : c.detail].filter(Boolean).join(' · '));
      chain.className = 'chain ' + (c.ok === true ? 'ok' : c.ok === false ? 'bad' : '');
      chain.title = c.detail || '';
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      Object.entries(fields).forEach(([k, field]) => { f[k] = field.value; });
      setExport();
      ctx.refresh();
    });

    return () => Promise.all([load(false), loadChain()]);
  }

  function auditRow(r) {
    const row = el('tr', { testid: 'audit-row', 'data-seq': r.seq, tabindex: 0, class: 'clickable', 'aria-expanded': 'false' },
      el('td', { class: 'num' }, r.seq), el('td', {}, timeEl(r.event_time)), el('td', {}, r.event || ''),
      el('td', {}, r.actor_id || '', r.actor_class ? el('span', { class: 'muted' }, ' ' + r.actor_class) : null),
      el('td', {}, r.server_name || ''), el('td', {}, r.tool_name || ''),
      el('td', {}, r.decision ? badge(r.decision, /DENY|DENIED|FAILED|BLOCKED|QUARANTINED|CONTAINED|REVOKED/.test(r.decision) ? 'bad' : r.decision === 'ALLOW' || r.decision === 'APPROVED' ? 'ok' : 'warn') : ''),
      el('td', {}, r.outcome || ''), el('td', { class: 'clip', title: r.reason || '' }, r.reason || ''),
      el('td', { class: 'num' }, r.latency_ms ?? ''));
    const toggle = () => toggleAuditDetail(row, r.seq);
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
    return row;
  }

  // The row's full record opens in a row of its own under it; a second click closes it.
  async function toggleAuditDetail(row, seq) {
    const open = row.nextElementSibling && row.nextElementSibling.classList.contains('detail-row') ? row.nextElementSibling : null;
    if (open) { open.remove(); row.setAttribute('aria-expanded', 'false'); return; }
    const box = el('div', { class: 'detail', testid: 'audit-detail' }, 'Loading…');
    row.after(el('tr', { class: 'detail-row' }, el('td', { colspan: row.cells.length }, box)));
    row.setAttribute('aria-expanded', 'true');
    try {
      const data = await api(API + '/audit/' + enc(seq));
      box.replaceChildren(jsonView(data.row));
    } catch (e) {
      box.replaceChildren(el('p', { class: 'message' }, e.message));
    }
  }

  // ---------------------------------------------------------------- gates

  function gatesPage(ctx) {
    const box = el('div', { class: 'cards' });
    const empty = el('p', { class: 'empty', hidden: true }, 'No gate is configured.');
    section(ctx, 'Gates', empty, box);
    // Gates have no live event: poll while the page is shown.
    const timer = setInterval(ctx.refresh, 30000);
    ctx.cleanup.push(() => clearInterval(timer));

    return async function refresh() {
      const data = await api(API + '/gates');
      if (!ctx.alive) return;
      box.replaceChildren(...(data.gates || []).map(gateCard));
      empty.hidden = box.childElementCount > 0;
    };
  }

  function number(v) {
    const n = Number(v);
    if (!Number.isFinite(n)) return String(v ?? '');
    return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(3)));
  }

  function gateCard(g) {
    return el('article', { class: 'card' + (g.tripped ? ' tripped' : ''), testid: 'gate-card', 'data-gate': g.name, 'data-tripped': String(Boolean(g.tripped)) },
      el('header', { class: 'card-head' }, el('h3', {}, g.name), badge(g.tripped ? 'tripped' : 'ok', g.tripped ? 'bad' : 'ok')),
      el('p', { class: 'gate-value' }, el('strong', {}, number(g.value)), ' / threshold ', number(g.threshold), g.window ? el('span', { class: 'muted' }, ' · last ' + g.window) : null),
      g.detail ? el('p', { class: 'muted' }, g.detail) : null,
      gateChart(g));
  }

  // History as a polyline, the threshold as a dashed line; the scale starts at zero so the
  // distance to the threshold reads honestly.
  function gateChart(g) {
    const W = 240, H = 64, P = 4;
    const values = (g.history || []).map((h) => Number(h.value)).filter(Number.isFinite);
    const threshold = Number(g.threshold);
    const top = Math.max(Number.isFinite(threshold) ? threshold : 0, ...values, 1e-9) * 1.15;
    const x = (i) => (values.length < 2 ? W / 2 : P + (i * (W - 2 * P)) / (values.length - 1));
    const y = (v) => H - P - (Math.max(0, v) / top) * (H - 2 * P);
    const label = g.name + ': ' + values.map(number).join(', ') + ' (threshold ' + number(g.threshold) + ')';
    const chart = svg('svg', { class: 'gate-chart', testid: 'gate-chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label },
      svg('title', {}, label),
      svg('line', { class: 'axis', x1: 0, x2: W, y1: H - P, y2: H - P }));
    if (Number.isFinite(threshold)) {
      chart.append(svg('line', { class: 'threshold', x1: 0, x2: W, y1: y(threshold), y2: y(threshold), 'stroke-dasharray': '4 3' }));
    }
    if (values.length) {
      chart.append(svg('polyline', { class: 'series', fill: 'none', points: values.map((v, i) => x(i).toFixed(1) + ',' + y(v).toFixed(1)).join(' ') }));
      const last = values.length - 1;
      chart.append(svg('circle', { class: 'series-end', cx: x(last), cy: y(values[last]), r: 2.5 }));
    }
    return chart;
  }

  // ---------------------------------------------------------------- start

  const SIGN_IN_ERRORS = {
    'not-configured': 'Single sign-on is not configured on this gateway.',
    unavailable: 'The identity provider cannot be reached. Try again, or use a break-glass key.',
    'unknown-flow': 'This sign-in is unknown, already used or expired. Start again.',
    'other-browser': 'This sign-in was started in another browser. Start again here.',
    'provider-refused': 'The identity provider refused the sign-in.',
    'wrong-issuer': 'The answer came from another issuer than the configured one.',
    'no-issuer': 'The answer did not name its issuer.',
    'no-code': 'The answer carried no authorization code.',
    'no-id-token': 'The identity provider sent no ID token.',
    'token-refused': 'The ID token was not valid for this console.',
    'not-admin': 'Only operators (admin principals) may use the console.',
    'not-recorded': 'The sign-in could not be recorded in the audit log, so it did not happen.',
    busy: 'Too many sign-ins are in progress. Try again in a minute.',
    failed: 'Sign-in failed.',
  };

  function start() {
    $('signin-key').addEventListener('submit', signInWithKey);
    $('signout').addEventListener('click', signOut);
    $('contain-cancel').addEventListener('click', () => $('contain-dialog').close());
    window.addEventListener('hashchange', route);
    // The single sign-on round trip may come back with ?error=<code>. Only these fixed texts are
    // shown: a link cannot put words of its own on the sign-in panel.
    const error = new URLSearchParams(location.search).get('error');
    if (error) say($('signin-error'), SIGN_IN_ERRORS[error] || SIGN_IN_ERRORS.failed);
    checkSession();
  }

  start();
}());
