// console.js - the luckydice web console: sign-in, the campaign view (per
// day charts with their numbers, the dispatcher, the watch lists, pause
// and resume) and the support view (a user's story in plain words,
// grants and revokes with a ticket, a dead delivery sent again).
//
// Rules the code keeps:
// - Every number shown comes from /console/api/ as it answered; the
//   campaign view asks again every 5 s while the tab is visible.
// - Every change goes through the confirmation step, which says what will
//   happen, and carries a ticket and a reason.
// - Text is set with textContent only; nothing is fetched from elsewhere.

import { ko, en, pickLanguage } from './i18n.js';
import { barChart } from './charts.js';

const LANG = pickLanguage();
const t = LANG === 'ko' ? ko : en;
const API = '/console/api/';
const POLL_MS = 5000;
const WATCH_EVERY = 6;          // the watch lists every 6th poll (30 s)
const TIMEOUT_MS = 15000;
const ROLES = { viewer: 1, support: 2, owner: 3 };
const COLORS = {
  visit: '#2563eb', invitee: '#16a34a', inviter: '#ca8a04', support: '#9333ea', revoke: '#dc2626',
  draws: '#0f766e', won: '#b4232a', stock: '#1f2328', open: '#6b7280', credited: '#16a34a',
  self_invite: '#f97316', already_credited: '#a855f7', not_new_user: '#0ea5e9', claim_limited: '#dc2626',
};
const REASONS = ['visit', 'invitee', 'inviter', 'support', 'revoke'];
const REFUSALS = ['self_invite', 'already_credited', 'not_new_user', 'claim_limited'];

const $ = (id) => document.getElementById(id);
const state = {
  operator: null,   // {name, role}
  promos: [],
  promo: null,      // the selected id
  view: 'campaign',
  uid: null,        // the user shown in the support view
  timer: null,
  polls: 0,
  confirm: null,    // what the confirmation step will run
};

// ---- small helpers -----------------------------------------------------

function text(el, s) { el.textContent = s == null ? '' : String(s); return el; }

function make(tag, attrs = {}, content = null) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (content != null) n.textContent = String(content);
  return n;
}

const fmt = (n) => Number(n).toLocaleString(LANG === 'ko' ? 'ko-KR' : 'en-US');
// "2024-07-08T09:00:00.000+09:00" -> "07-08 09:00:00"
const when = (iso) => (iso ? iso.slice(5, 19).replace('T', ' ') : '');
const can = (role) => state.operator && ROLES[state.operator.role] >= ROLES[role];

function errorText(json, status) {
  const code = json && json.error;
  if (code && t.errors[code]) return `${t.errors[code]} (${json.message})`;
  if (status === 0) return t.errors.network;
  return json && json.message ? json.message : t.errors.error;
}

// One request; resolves {status, json} (status 0: the network failed).
// A 401 anywhere sends the operator back to the sign-in.
async function api(method, path, body) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const opt = { method, credentials: 'same-origin', signal: ctl.signal, headers: {} };
    if (method === 'POST') {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body || {});
    }
    const r = await fetch(API + path, opt);
    let json = null;
    try { json = await r.json(); } catch { /* not JSON */ }
    if (r.status === 401 && path !== 'session') showSignin(errorText(json, 401));
    return { status: r.status, json };
  } catch {
    return { status: 0, json: null };
  } finally {
    clearTimeout(timer);
  }
}

const promoPath = (rest) => `promotions/${encodeURIComponent(state.promo)}/${rest}`;

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  return { promo: h.get('promo'), view: h.get('view'), uid: h.get('uid') };
}

function writeHash() {
  const h = new URLSearchParams();
  if (state.promo) h.set('promo', state.promo);
  h.set('view', state.view);
  if (state.view === 'support' && state.uid) h.set('uid', state.uid);
  history.replaceState(null, '', `#${h}`);
}

// ---- sign-in -----------------------------------------------------------

function showSignin(msg) {
  stopPolling();
  state.operator = null;
  $('app').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  text($('signin-error'), msg || '');
  document.body.dataset.ready = '1';
  document.body.dataset.view = 'signin';
}

async function signin(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  $('signin-button').disabled = true;
  const r = await api('POST', 'session', { token });
  $('signin-button').disabled = false;
  $('token').value = '';
  if (r.status !== 200) {
    text($('signin-error'), errorText(r.json, r.status));
    document.body.dataset.view = 'signin';
    return;
  }
  await start(r.json.operator);
}

async function signout() {
  await api('POST', 'signout', {});
  showSignin('');
}

// ---- the app -----------------------------------------------------------

async function start(operator) {
  state.operator = operator;
  text($('who-name'), t.signedInAs(operator.name, t.roles[operator.role] || operator.role));
  $('who').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('tab-support').hidden = !can('support');
  const r = await api('GET', 'promotions');
  if (r.status !== 200) {
    text($('message'), errorText(r.json, r.status));
    return;
  }
  state.promos = r.json.promotions;
  const sel = $('promo');
  sel.replaceChildren(...state.promos.map((p) => make('option', { value: p.id }, `${p.name} (${p.id})`)));
  const h = readHash();
  const first = state.promos.find((p) => p.active) || state.promos[0];
  state.promo = state.promos.some((p) => p.id === h.promo) ? h.promo : first && first.id;
  sel.value = state.promo || '';
  state.view = h.view === 'support' && can('support') ? 'support' : 'campaign';
  if (state.view === 'support' && h.uid) {
    $('uid').value = h.uid;
  }
  show(state.view);
  if (state.view === 'support' && h.uid) await findUser(h.uid);
}

function show(view) {
  state.view = view;
  $('campaign').hidden = view !== 'campaign';
  $('support').hidden = view !== 'support';
  $('tab-campaign').setAttribute('aria-selected', String(view === 'campaign'));
  $('tab-support').setAttribute('aria-selected', String(view === 'support'));
  document.body.dataset.view = view;
  writeHash();
  stopPolling();
  if (view === 'campaign') {
    state.polls = 0;
    poll();
  } else {
    document.body.dataset.ready = '1';
  }
}

function stopPolling() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

// The campaign view's loop: days and the outbox every time, the watch
// lists every WATCH_EVERY-th time; again in POLL_MS while visible.
async function poll() {
  stopPolling();
  if (!state.promo || state.view !== 'campaign' || !state.operator) return;
  const promo = state.promo;
  const watch = can('support') && state.polls % WATCH_EVERY === 0;
  const [days, outbox, seen] = await Promise.all([
    api('GET', promoPath('days')),
    api('GET', promoPath('outbox')),
    watch ? api('GET', promoPath('watch')) : null,
  ]);
  if (promo !== state.promo || state.view !== 'campaign' || !state.operator) return;
  state.polls += 1;
  if (days.status === 200) {
    drawDays(days.json);
    text($('message'), '');
  } else {
    text($('message'), errorText(days.json, days.status));
  }
  if (outbox.status === 200) drawOutbox(outbox.json);
  if (seen && seen.status === 200) drawWatch(seen.json);
  $('watch').hidden = !can('support');
  document.body.dataset.ready = '1';
  document.body.dataset.polls = String(state.polls);
  if (!document.hidden) state.timer = setTimeout(poll, POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.view === 'campaign' && state.operator && !state.timer) poll();
});

// ---- the campaign view -----------------------------------------------------

// A table of the days: one row a day (today marked), one column a value,
// a total row. Each cell says data-day and data-k, for the test to read.
function dayTable(table, days, today, columns) {
  const head = make('tr');
  head.appendChild(make('th', { scope: 'col' }, t.day));
  for (const c of columns) head.appendChild(make('th', { scope: 'col' }, c.label));
  const rows = [head];
  const totals = columns.map(() => 0);
  days.forEach((d, i) => {
    const tr = make('tr', i === today ? { class: 'today' } : {});
    tr.appendChild(make('th', { scope: 'row' }, i === today ? `${d.day.slice(5)} · ${t.today}` : d.day.slice(5)));
    columns.forEach((c, j) => {
      const v = c.value(d);
      totals[j] += c.total === false ? 0 : v;
      tr.appendChild(make('td', { 'data-day': d.day, 'data-k': c.k }, fmt(v)));
    });
    rows.push(tr);
  });
  const tr = make('tr', { class: 'total' });
  tr.appendChild(make('th', { scope: 'row' }, t.total));
  columns.forEach((c, j) => tr.appendChild(make('td', { 'data-day': 'total', 'data-k': c.k },
    c.total === false ? '' : fmt(totals[j]))));
  rows.push(tr);
  table.replaceChildren(...rows);
}

function drawDays(s) {
  const info = s.info;
  const days = s.days;
  const names = days.map((d) => d.day);
  const today = s.today;
  text($('promo-name'), `${info.name} (${info.id})`);
  text($('promo-state'), `${t.period(info.first_day, info.last_day, s.time_zone)} · ${
    info.paused ? t.paused : info.active ? t.active : t.notActive}`);
  $('promo-state').dataset.paused = info.paused ? '1' : '0';
  $('owner').hidden = !can('owner');
  text($('pause-state'), info.paused ? t.pausedSince(when(info.paused.at), info.paused.reason) : '');
  $('pause').disabled = Boolean(info.paused);
  $('resume').disabled = !info.paused;
  text($('updated'), t.updated(when(s.now)));
  text($('pending'), s.pending > 0 ? t.pending(s.pending) : '');
  document.body.dataset.pending = String(s.pending);

  // dice granted by reason (a revoke's are drawn below zero in the table only)
  barChart($('chart-grants'), {
    days: names, today,
    series: REASONS.filter((r) => r !== 'revoke').map((r) => ({
      key: r, label: t.reasons[r], color: COLORS[r], values: days.map((d) => d.grants[r].dice) })),
  });
  dayTable($('table-grants'), days, today,
    REASONS.map((r) => ({ k: `dice-${r}`, label: t.reasonsShort[r], value: (d) => d.grants[r].dice })));

  barChart($('chart-draws'), {
    days: names, today,
    series: [{ key: 'draws', label: t.draws, color: COLORS.draws, values: days.map((d) => d.draws) }],
  });
  dayTable($('table-draws'), days, today, [{ k: 'draws', label: t.draws, value: (d) => d.draws }]);

  // one chart and table per prize: won against the day's stock (and what
  // has opened today, for a paced prize)
  const wins = $('wins');
  const panels = [];
  for (const z of s.prize_list) {
    const panel = make('div', { class: 'card panel', 'data-prize': z.id });
    panel.appendChild(make('h3', {}, `${t.chartWins(z.name)} · ${z.release === 'even' ? t.paced : t.midnight}`));
    const split = make('div', { class: 'split' });
    const chart = make('div', { class: 'chart' });
    const box = make('div', { class: 'numbers' });
    const table = make('table', { 'data-prize': z.id });
    box.appendChild(table);
    split.append(chart, box);
    panel.appendChild(split);
    panels.push(panel);
    barChart(chart, {
      days: names, today,
      series: [{ key: 'won', label: t.won, color: COLORS.won, values: days.map((d) => d.prizes[z.id].won) }],
      line: { key: 'stock', label: t.stock, color: COLORS.stock, values: days.map((d) => d.prizes[z.id].stock) },
    });
    dayTable(table, days, today, [
      { k: 'won', label: t.won, value: (d) => d.prizes[z.id].won },
      { k: 'stock', label: t.stock, value: (d) => d.prizes[z.id].stock },
      { k: 'open', label: t.open, value: (d) => d.prizes[z.id].open },
      { k: 'left', label: t.left, value: (d) => d.prizes[z.id].left },
    ]);
  }
  wins.replaceChildren(...panels);

  barChart($('chart-invites'), {
    days: names, today,
    series: [
      { key: 'credited', label: t.credited, color: COLORS.credited, values: days.map((d) => d.invites) },
      ...REFUSALS.map((r) => ({ key: r, label: t.refusals[r], color: COLORS[r], values: days.map((d) => d.refused[r]) })),
    ],
  });
  dayTable($('table-invites'), days, today, [
    { k: 'invites', label: t.credited, value: (d) => d.invites },
    ...REFUSALS.map((r) => ({ k: `refused-${r}`, label: t.refusals[r], value: (d) => d.refused[r] })),
  ]);
}

function drawOutbox(o) {
  text($('due'), o.due_more ? t.more(fmt(o.due)) : fmt(o.due));
  text($('waiting'), fmt(o.waiting));
  text($('oldest-due'), o.oldest_due ? when(o.oldest_due) : t.none);
  text($('dead'), fmt(o.dead));
  const box = $('dead-box');
  if (!o.dead_events) {
    box.hidden = true;
    return;
  }
  box.hidden = o.dead_events.length === 0;
  const rows = [make('tr')];
  for (const h of ['#', t.user, t.eventKind, t.lastError('').replace(/: $/, ''), t.at]) rows[0].appendChild(make('th', {}, h));
  for (const e of o.dead_events) {
    const tr = make('tr', { 'data-event': e.id });
    tr.appendChild(make('td', {}, e.id));
    const u = make('td');
    const a = make('a', { href: '#', 'data-uid': e.user }, e.user);
    a.addEventListener('click', (ev) => { ev.preventDefault(); openUser(e.user); });
    u.appendChild(a);
    tr.appendChild(u);
    tr.appendChild(make('td', {}, t.kinds[e.kind] || e.kind));
    tr.appendChild(make('td', {}, e.last_error || e.last_status || ''));
    tr.appendChild(make('td', {}, when(e.at)));
    rows.push(tr);
  }
  $('dead-events').replaceChildren(...rows);
}

function drawWatch(w) {
  const inv = [make('tr')];
  for (const h of [t.user, t.invitesCredited, t.invitesGranted]) inv[0].appendChild(make('th', {}, h));
  for (const x of w.inviters) {
    const tr = make('tr', { 'data-uid': x.user });
    const td = make('td');
    const a = make('a', { href: '#' }, x.user);
    a.addEventListener('click', (ev) => { ev.preventDefault(); openUser(x.user); });
    td.appendChild(a);
    tr.append(td, make('td', { 'data-k': 'credited' }, fmt(x.credited)),
      make('td', { 'data-k': 'granted' }, fmt(x.granted)));
    inv.push(tr);
  }
  $('inviters').replaceChildren(...inv);
  const cl = [make('tr')];
  for (const h of [t.client, t.refused, t.credited, t.lastDay]) cl[0].appendChild(make('th', {}, h));
  for (const x of w.clients) {
    cl.push(make('tr', { 'data-client': x.client }));
    cl[cl.length - 1].append(make('td', {}, x.client), make('td', { 'data-k': 'refused' }, fmt(x.refused)),
      make('td', { 'data-k': 'credited' }, fmt(x.credited)), make('td', {}, x.last_day));
  }
  $('clients').replaceChildren(...cl);
}

// ---- the support view --------------------------------------------------

function openUser(uid) {
  if (!can('support')) return;
  $('uid').value = uid;
  show('support');
  findUser(uid);
}

async function findUser(uid) {
  state.uid = uid;
  writeHash();
  text($('user-message'), t.loading);
  const r = await api('GET', promoPath(`users/${encodeURIComponent(uid)}`));
  if (r.status !== 200) {
    $('user').hidden = true;
    text($('user-message'), r.status === 404 && r.json && r.json.error === 'unknown_user'
      ? t.noUser(uid) : errorText(r.json, r.status));
    document.body.dataset.user = '';
    return;
  }
  text($('user-message'), '');
  drawUser(r.json);
  $('user').hidden = false;
  document.body.dataset.user = uid;
}

// The balance explained: what was granted by reason, what was rolled,
// and what the cache holds beside the ledger.
function explain(h) {
  text($('explain'), t.balanceIs(h.user, fmt(h.balance)));
  $('explain').dataset.balance = String(h.balance);
  text($('explain-sum'), t.balanceSum(fmt(h.granted), fmt(h.spent)));
  const sum = {}, count = {};
  for (const g of h.grants) {
    sum[g.reason] = (sum[g.reason] || 0) + g.amount;
    count[g.reason] = (count[g.reason] || 0) + 1;
  }
  const parts = [];
  if (sum.visit) parts.push(['visit', t.partVisit(sum.visit)]);
  if (sum.invitee) parts.push(['invitee', t.partInvitee(sum.invitee, h.invited_by ? h.invited_by.inviter : '?')]);
  if (sum.inviter) parts.push(['inviter', t.partInviter(sum.inviter, count.inviter)]);
  if (sum.support) parts.push(['support', t.partSupport(sum.support, count.support)]);
  if (sum.revoke) parts.push(['revoke', t.partRevoke(-sum.revoke, count.revoke)]);
  $('parts').replaceChildren(...parts.map(([k, s]) => make('li', { 'data-reason': k, 'data-dice': sum[k] }, s)));
  const c = h.cache || { state: 'disabled' };
  text($('cache'), c.state === 'hit' ? (c.drift ? t.cacheDrift(fmt(c.balance), fmt(h.balance)) : t.cacheSame(fmt(c.balance)))
    : c.state === 'miss' ? t.cacheMiss : c.state === 'unavailable' ? t.cacheUnavailable : t.cacheDisabled);
  $('cache').dataset.state = c.drift ? 'drift' : c.state;
}

// Every grant, invite, refused claim and draw, oldest first, each with
// the deliveries of its events under it (a win's reward and notification,
// an invite's notification to the inviter; found by the events' keys).
function story(h) {
  const items = [];
  const add = (at, kind, s, key = null) => {
    const it = { at, kind, s, key, subs: [] };
    items.push(it);
    return it;
  };
  const byKey = new Map();
  for (const g of h.grants) {
    const s = g.reason === 'visit' ? t.evVisit(g.amount)
      : g.reason === 'invitee' ? t.evInvitee(g.amount, g.ref)
      : g.reason === 'inviter' ? t.evInviter(g.amount, g.ref)
      : g.reason === 'support' ? t.evSupport(g.amount, g.ref, g.note)
      : t.evRevoke(-g.amount, g.ref, g.note);
    const it = add(g.at, `grant-${g.reason}`, s);
    if (g.reason === 'inviter') byKey.set(`invite/${g.ref}`, it);
  }
  for (const i of h.invites) if (!i.inviter_granted) add(i.at, 'past-cap', t.evPastCap(i.invitee));
  for (const r of h.refused_claims || []) add(r.at, 'refused', t.evRefused(r.reason, r.inviter, r.client || '-'));
  for (const d of h.draws) {
    const it = add(d.at, d.prize ? 'win' : 'miss', d.prize ? t.evDrawWin(d.id, d.prize.name) : t.evDrawMiss(d.id));
    byKey.set(`draw/${d.id}`, it);
  }
  for (const e of h.events || []) {
    const m = /\/(draw\/\d+|invite\/[A-Za-z0-9_-]+)\/(?:reward|notify)$/.exec(e.key || '');
    let s = t.evDelivery(t.kinds[e.kind] || e.kind, t.deliveryStates[e.state] || e.state, e.attempts);
    if (e.last_error) s += ` · ${t.lastError(e.last_error)}`;
    const sub = { kind: `event-${e.state}`, s, event: e };
    const owner = m && byKey.get(m[1]);
    if (owner) owner.subs.push(sub);
    else add(e.at, sub.kind, s).event = e;
  }
  items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  // a dead event's line gets the button that sends it again
  const retry = (li, e) => {
    li.dataset.event = e.id;
    if (e.state !== 'dead' || !can('support')) return;
    const b = make('button', { type: 'button', class: 'secondary small', 'data-retry': e.id }, t.retry);
    b.addEventListener('click', () => askRetry(e.id));
    li.appendChild(b);
  };
  const lis = [];
  for (const x of items) {
    const li = make('li', { 'data-kind': x.kind });
    li.appendChild(make('time', {}, when(x.at)));
    li.appendChild(make('span', {}, x.s));
    if (x.event) retry(li, x.event);
    lis.push(li);
    for (const sub of x.subs) {
      const sl = make('li', { class: 'sub', 'data-kind': sub.kind });
      sl.appendChild(make('span', {}, `└ ${sub.s}`));
      retry(sl, sub.event);
      lis.push(sl);
    }
  }
  $('story').replaceChildren(...lis);
}

function drawUser(h) {
  explain(h);
  story(h);
}

// ---- changes: the confirmation step, then the request -----------------

function ask(message, run) {
  state.confirm = run;
  text($('confirm-text'), message);
  $('confirm').hidden = false;
  $('confirm-yes').focus();
}

function closeConfirm() {
  state.confirm = null;
  $('confirm').hidden = true;
}

async function confirmYes() {
  const run = state.confirm;
  closeConfirm();
  if (run) await run();
}

// The ticket and reason of the support view's form, or null (and a word
// about it) when either is missing.
function ticketAndReason() {
  const ticket = $('ticket').value.trim(), reason = $('reason').value.trim();
  return { ticket, reason };
}

function askChange(revoke) {
  const n = Number($('amount').value);
  const { ticket, reason } = ticketAndReason();
  const uid = state.uid;
  const msg = revoke ? t.confirmRevoke(n, uid, ticket || '?') : t.confirmGrant(n, uid, ticket || '?');
  ask(msg, async () => {
    // the server refuses what is missing (400): the form sends it as it is
    const body = { amount: n, reason, ticket };
    if (!ticket) delete body.ticket;
    if (!reason) delete body.reason;
    const r = await api('POST', promoPath(`users/${encodeURIComponent(uid)}/${revoke ? 'revoke' : 'grant'}`), body);
    const out = $('change-status');
    out.dataset.status = String(r.status);
    if (r.status === 200) {
      text(out, revoke ? t.revoked(n, fmt(r.json.balance)) : t.granted(n, fmt(r.json.balance)));
      await findUser(uid);
    } else {
      text(out, (r.json && r.json.error === 'missing_field' ? `${t.needTicket} ` : '') + errorText(r.json, r.status));
    }
  });
}

function askRetry(id) {
  const { ticket, reason } = ticketAndReason();
  ask(t.confirmRetry(id), async () => {
    const body = { ticket, reason };
    if (!ticket) delete body.ticket;
    if (!reason) delete body.reason;
    const r = await api('POST', promoPath(`outbox/${id}/retry`), body);
    const out = $('change-status');
    out.dataset.status = String(r.status);
    text(out, r.status === 200 ? t.retried : (r.json && r.json.error === 'missing_field' ? `${t.needTicket} ` : '') + errorText(r.json, r.status));
    if (r.status === 200) await findUser(state.uid);
  });
}

// The owner's pause and resume, with the ticket and reason of their form.
function askPause(pause) {
  const ticket = $('pause-ticket').value.trim(), reason = $('pause-reason').value.trim();
  ask(pause ? t.confirmPause(state.promo) : t.confirmResume(state.promo), async () => {
    const body = { ticket, reason };
    if (!ticket) delete body.ticket;
    if (!reason) delete body.reason;
    const r = await api('POST', promoPath(pause ? 'pause' : 'resume'), body);
    const out = $('message');
    out.dataset.status = String(r.status);
    text(out, r.status === 200 ? '' : (r.json && r.json.error === 'missing_field' ? `${t.needTicket} ` : '') + errorText(r.json, r.status));
    poll();
  });
}

// ---- start ---------------------------------------------------------------

function fillText() {
  document.documentElement.lang = LANG;
  document.title = t.pageTitle;
  for (const n of document.querySelectorAll('[data-i18n]')) text(n, t[n.dataset.i18n]);
}

async function main() {
  fillText();
  $('signin-form').addEventListener('submit', signin);
  $('signout').addEventListener('click', signout);
  $('tab-campaign').addEventListener('click', () => show('campaign'));
  $('tab-support').addEventListener('click', () => show('support'));
  $('promo').addEventListener('change', () => {
    state.promo = $('promo').value;
    $('user').hidden = true;
    show(state.view);
  });
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const uid = $('uid').value.trim();
    if (uid) findUser(uid);
  });
  $('grant').addEventListener('click', () => askChange(false));
  $('revoke').addEventListener('click', () => askChange(true));
  $('pause').addEventListener('click', () => askPause(true));
  $('resume').addEventListener('click', () => askPause(false));
  $('confirm-yes').addEventListener('click', confirmYes);
  $('confirm-no').addEventListener('click', closeConfirm);
  const r = await api('GET', 'session');
  if (r.status === 200) await start(r.json.operator);
  else showSignin('');
}

main();
