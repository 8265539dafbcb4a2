// app.js - the Lucky Dice promotion page.
//
// Load sequence: POST visit -> POST invite/claim (once per promo+code per
// browser session) -> GET invite and GET me. Then the roll button spends
// one dice per click via POST draws.
//
// Rules the code keeps:
// - Every number shown (dice, friends) is the one the API last returned;
//   responses are applied in the order their requests were sent, so a slow
//   older answer never overwrites a newer one.
// - A roll keeps its request_id until a definitive answer (2xx or a 4xx
//   that is not "try later") arrives, so retrying after a network error or
//   a reload can never spend a second dice for the same click.
// - Text comes from i18n.js and is set with textContent only.

import { ko, en, pickLanguage } from './i18n.js';
import { tokenLinks } from './page-config.js';

const LANG = pickLanguage();
const t = LANG === 'ko' ? ko : en;

const DEFAULT_PROMO = 'lucky-dice-2024';
const REQUEST_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
// A cookie value may not hold spaces, quotes, commas, semicolons or
// backslashes; tokens (uid.expiry.base64url) never do.
const COOKIE_SAFE_RE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,1024}$/;
const TIMEOUT_MS = 15000;   // a request slower than this counts as a network error
const MIN_ROLL_MS = 900;    // shortest dice animation (none with reduced motion)
const MAX_RETRY_WAIT_S = 30;
const REFRESH_EVERY_MS = 10000; // at most this often when the tab comes back

const $ = (id) => document.getElementById(id);
const el = {
  name: $('promo-name'), period: $('promo-period'),
  message: $('message'), retry: $('retry'),
  balance: $('balance'), die: $('die'), roll: $('roll'), result: $('result'),
  inviteLink: $('invite-link'), copy: $('copy'), share: $('share'),
  copyStatus: $('copy-status'), friends: $('friends'), history: $('history'),
};

// sessionStorage can throw (privacy modes, sandboxed frames): never fatal.
const store = {
  get(k) { try { return sessionStorage.getItem(k); } catch { return null; } },
  set(k, v) { try { sessionStorage.setItem(k, v); } catch { /* not remembered */ } },
  del(k) { try { sessionStorage.removeItem(k); } catch { /* nothing to do */ } },
};

const { promo, code } = readLocation();
const apiBase = `/api/promotions/${encodeURIComponent(promo)}/`;
const claimKey = `ld:claimed:${promo}:${code}`;
const pendingKey = `ld:pending-draw:${promo}`;

const state = {
  loading: false,
  loaded: false,       // the load sequence has succeeded once
  authorized: true,    // false after any 401
  active: true,        // false after 403 promotion_not_active or _paused, or me.active=false
  paused: false,       // an operator paused the promotion (403 promotion_paused, me.paused)
  fatal: false,        // unknown promotion: nothing else can work
  rolling: false,
  promotion: null,     // me.promotion
  notice: null,        // the bonus/claim/not-active message kept across retries
  inviteUrl: '',
  lastMeAt: 0,
  pendingId: null,     // see pendingRequestId()
};

let requestSeq = 0;    // numbers every API request in the order it was sent
let balanceSeq = 0;    // seq of the response the shown balance came from
let meSeq = 0;         // seq of the response the history came from
let retryAction = null;
let retryTimer = 0;

// ---------------------------------------------------------------- location

// Reads promo and invite code from the URL. A ?token= demo link is taken
// out of the address bar (and so out of history, bookmarks and Referer
// headers) always, and moved into the ld_token cookie only where the
// deployment turns demo links on (page-config.js): anywhere else a link
// from someone else must not sign this browser in as them.
function readLocation() {
  const url = new URL(location.href);
  const q = url.searchParams;
  const token = q.get('token');
  if (token !== null) {
    if (tokenLinks === true && COOKIE_SAFE_RE.test(token)) {
      const secure = location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = `ld_token=${token}; path=/; SameSite=Lax${secure}`;
      // A Bearer token in sessionStorage wins over the cookie on the server;
      // drop it so the link's identity is the one used.
      store.del('ld_token');
    }
    q.delete('token');
    const rest = q.toString();
    history.replaceState(history.state, '', url.pathname + (rest ? `?${rest}` : '') + url.hash);
  }
  // nginx serves the page at /i/{code} too; there the path holds the code.
  const m = /^\/i\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
  return {
    promo: q.get('promo') || DEFAULT_PROMO,
    code: m ? m[1] : (q.get('code') || '').trim(),
  };
}

// --------------------------------------------------------------------- API

function isTransient(r) {
  // Worth retrying as is: no answer, timeout, busy, rate limit, server fault.
  // claim_limited is a 429 too, but it lasts the day.
  return r.status === 0 || r.status === 408 || r.status >= 500 ||
    (r.status === 429 && r.code !== 'claim_limited');
}

function codeForStatus(status) {
  // For answers without a JSON error body (e.g. nginx's own error pages).
  if (status === 401) return 'unauthorized';
  if (status === 408) return 'network';
  if (status === 429) return 'rate_limited';
  if (status === 502 || status === 503 || status === 504) return 'unavailable';
  return 'error';
}

// One API call. Resolves (never rejects) to
// {ok:true, status, data, seq} or {ok:false, status, code, retryAfter, seq};
// status 0 means no usable answer (code "network").
async function api(method, path, body) {
  const seq = ++requestSeq;
  const headers = { Accept: 'application/json' };
  const opts = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const bearer = store.get('ld_token');
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const ctl = new AbortController();
  opts.signal = ctl.signal;
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    let res;
    try {
      res = await fetch(apiBase + path, opts);
    } catch {
      return { ok: false, status: 0, code: 'network', retryAfter: 0, seq };
    }
    let data = null;
    try { data = await res.json(); } catch { /* not JSON, or cut off */ }
    const isObj = data !== null && typeof data === 'object';
    if (res.ok) {
      // A 2xx we cannot read is as good as no answer: retry it.
      return isObj ? { ok: true, status: res.status, data, seq }
        : { ok: false, status: 0, code: 'network', retryAfter: 0, seq };
    }
    const ra = parseInt(res.headers.get('Retry-After') || '', 10);
    return {
      ok: false,
      status: res.status,
      code: isObj && typeof data.error === 'string' && data.error ? data.error : codeForStatus(res.status),
      retryAfter: Number.isFinite(ra) && ra > 0 ? Math.min(ra, MAX_RETRY_WAIT_S) : 0,
      seq,
    };
  } finally {
    clearTimeout(timer);
  }
}

// ----------------------------------------------------------------- display

function setBalance(n, seq) {
  if (typeof n !== 'number' || !Number.isFinite(n) || seq < balanceSeq) return;
  balanceSeq = seq;
  el.balance.textContent = String(n);
}

function canRoll() {
  return state.loaded && state.authorized && state.active && !state.fatal &&
    !state.rolling && !state.loading;
}

function updateRoll() {
  el.roll.disabled = !canRoll();
  if (state.rolling) el.roll.dataset.busy = '1';
  else delete el.roll.dataset.busy;
}

// Today's date (YYYY-MM-DD) in the promotion's time zone, or null.
function todayIn(timeZone) {
  if (!timeZone) return null;
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
    }).formatToParts(new Date());
    const get = (type) => (parts.find((p) => p.type === type) || {}).value;
    return `${get('year')}-${get('month')}-${get('day')}`;
  } catch {
    return null;
  }
}

function messageText(code) {
  if (code === 'promotion_not_active') {
    // Say "not started" or "over" when me told us the days.
    const p = state.promotion;
    const today = p && todayIn(p.time_zone);
    if (today && p.first_day && today < p.first_day) return t.messages.promotion_not_started;
    if (today && p.last_day && today > p.last_day) return t.messages.promotion_ended;
  }
  return t.messages[code] || t.messages.error;
}

const SUCCESS_CODES = new Set(['visit_bonus', 'invite_bonus']);
const INFO_CODES = new Set(['invite_claimed', 'promotion_not_active', 'promotion_paused']);

// Shows one message in #message. code goes to data-code (null: none);
// retry, when given, is what the "try again" button runs.
function say(code, text, retry = null, waitS = 0) {
  el.message.textContent = text || '';
  if (code) el.message.dataset.code = code;
  else delete el.message.dataset.code;
  el.message.dataset.kind = !code ? 'info'
    : SUCCESS_CODES.has(code) ? 'success' : INFO_CODES.has(code) ? 'info' : 'error';
  retryAction = retry;
  el.retry.hidden = !retry;
  clearTimeout(retryTimer);
  el.retry.disabled = waitS > 0;
  if (waitS > 0) retryTimer = setTimeout(() => { el.retry.disabled = false; }, waitS * 1000);
}

function sayCode(code, retry = null, waitS = 0) {
  say(code, messageText(code), retry, waitS);
}

// Reports a failed call; offers retry only when retrying can help.
function sayError(r, retry) {
  if (r.code === 'unauthorized' || r.status === 401) state.authorized = false;
  if (r.code === 'unknown_promotion') state.fatal = true;
  if (r.code === 'promotion_not_active') state.active = false;
  if (r.code === 'promotion_paused') {
    state.active = false;
    state.paused = true;
  }
  const transient = isTransient(r);
  sayCode(r.code, transient ? retry : null, r.retryAfter);
  updateRoll();
}

function showInvite(data) {
  const url = typeof data.url === 'string' ? data.url : '';
  state.inviteUrl = url;
  el.inviteLink.textContent = url || t.inviteLinkUnavailable;
  el.inviteLink.dataset.url = url;
  el.copy.disabled = !url;
  el.share.disabled = !url;
}

function applyMe(r) {
  const me = r.data;
  setBalance(me.balance, r.seq);
  if (r.seq < meSeq) return;
  meSeq = r.seq;
  state.lastMeAt = Date.now();
  if (me.promotion && typeof me.promotion === 'object') {
    state.promotion = me.promotion;
    if (me.promotion.name) el.name.textContent = me.promotion.name;
    if (me.promotion.first_day && me.promotion.last_day) {
      el.period.textContent = t.period(me.promotion.first_day, me.promotion.last_day);
    }
    if (me.promotion.paused === true) {
      state.active = false;
      if (!state.paused && state.loaded) sayCode('promotion_paused');
      state.paused = true;
    } else if (state.paused && me.promotion.active === true) {
      // resumed: roll again, and take the pause's notice away
      state.paused = false;
      state.active = true;
      if (el.message.dataset.code === 'promotion_paused') say(null, '');
    }
    if (me.promotion.active === false) state.active = false;
  }
  if (typeof me.invites_credited === 'number') el.friends.textContent = String(me.invites_credited);
  renderHistory(me.grants, me.draws);
}

// "2024-07-08T14:03:05+09:00" -> "7월 8일 14:03", in the promotion's own
// time (the server writes times in the promotion's zone).
function formatTime(at) {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})/.exec(at || '');
  return m ? t.time(Number(m[2]), Number(m[3]), m[4], m[5]) : String(at || '');
}

function historyItem(kind, what, delta, at) {
  const li = document.createElement('li');
  li.className = kind;
  const w = document.createElement('span');
  w.className = 'what';
  w.textContent = what;
  li.append(w);
  if (delta) {
    const d = document.createElement('span');
    d.className = 'delta';
    d.textContent = delta;
    li.append(d);
  }
  const time = document.createElement('time');
  if (at) time.dateTime = at;
  time.textContent = formatTime(at);
  li.append(time);
  return li;
}

function renderHistory(grants, draws) {
  const rows = [];
  for (const g of Array.isArray(grants) ? grants : []) {
    const n = Math.abs(Number(g.amount) || 0);
    // Taking dice back shows a minus whatever sign the ledger stores.
    const minus = g.reason === 'revoke' || Number(g.amount) < 0;
    const kind = minus ? 'grant minus' : 'grant';
    rows.push({
      at: g.at,
      li: historyItem(kind, t.reasons[g.reason] || t.reasonOther,
        t.delta(minus ? '−' : '+', n), g.at),
    });
  }
  for (const d of Array.isArray(draws) ? draws : []) {
    const prize = d.prize && d.prize.name;
    rows.push({
      at: d.at,
      li: historyItem(prize ? 'draw win' : 'draw', prize ? t.drawWin(prize) : t.drawMiss, '', d.at),
    });
  }
  const time = (at) => Date.parse(at) || 0;
  rows.sort((a, b) => time(b.at) - time(a.at)); // newest first
  if (rows.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = t.historyEmpty;
    el.history.replaceChildren(li);
  } else {
    el.history.replaceChildren(...rows.map((row) => row.li));
  }
}

// -------------------------------------------------------------------- load

async function load() {
  if (state.loading) return;
  state.loading = true;
  updateRoll();
  say(null, t.loading);
  try {
    if (await loadSteps()) {
      state.loaded = true;
      if (state.notice) sayCode(state.notice);
      else say(null, '');
    } else if (!state.inviteUrl) {
      // Signed out, offline, ...: do not leave "making your link" up.
      el.inviteLink.textContent = t.inviteLinkUnavailable;
    }
  } finally {
    state.loading = false;
    updateRoll();
    document.body.dataset.ready = '1';
  }
}

// Returns true when everything loaded; otherwise it has already shown why.
async function loadSteps() {
  const visit = await api('POST', 'visit', {});
  if (visit.ok) {
    setBalance(visit.data.balance, visit.seq);
    if (visit.data.granted && !state.notice) state.notice = 'visit_bonus';
  } else if (visit.code === 'promotion_not_active' || visit.code === 'promotion_paused') {
    state.active = false;
    state.paused = visit.code === 'promotion_paused';
    state.notice = visit.code;
  } else {
    // Signed out, unknown promotion, busy, offline: nothing else would work.
    sayError(visit, load);
    return false;
  }

  // Claim the invite once. The session flag is set only on a definitive
  // answer, so a lost answer is retried (the server is idempotent).
  if (code && state.active && !store.get(claimKey)) {
    const claim = await api('POST', 'invite/claim', { code });
    if (claim.ok) {
      store.set(claimKey, '1');
      setBalance(claim.data.balance, claim.seq);
      state.notice = claim.data.granted ? 'invite_bonus' : 'invite_claimed';
    } else if (isTransient(claim) || claim.code === 'unauthorized') {
      sayError(claim, load);
      return false;
    } else if (claim.code === 'promotion_not_active' || claim.code === 'promotion_paused') {
      state.active = false; // the link is claimed on a later visit
      state.notice = claim.code;
    } else {
      store.set(claimKey, '1');
      state.notice = claim.code; // unknown_code, already_credited, self_invite, ...
    }
  }

  const [invite, me] = await Promise.all([api('GET', 'invite'), api('GET', 'me')]);
  if (invite.ok) showInvite(invite.data);
  else if (!state.inviteUrl) el.inviteLink.textContent = t.inviteLinkUnavailable;
  if (me.ok) applyMe(me);
  const failed = [me, invite].find((r) => !r.ok && (isTransient(r) || r.code === 'unauthorized')) ||
    (me.ok ? null : me);
  if (failed) {
    sayError(failed, load);
    return false;
  }
  if (state.promotion && state.promotion.paused === true) state.notice = 'promotion_paused';
  else if (state.promotion && state.promotion.active === false) state.notice = 'promotion_not_active';
  return true;
}

// Background refresh of history, friends and balance. Failures stay quiet
// (what is shown is still the last real answer) except signing out.
async function refreshMe() {
  const r = await api('GET', 'me');
  if (r.ok) applyMe(r);
  else if (r.code === 'unauthorized') sayError(r, null);
  updateRoll();
}

// -------------------------------------------------------------------- roll

function newRequestId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID(); // secure contexts
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function reducedMotion() {
  return typeof window.matchMedia === 'function' &&
    window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

// Starts the tumbling die; stop() waits out the minimum show time, then
// lands on `face` (or the current face when null). The faces shown while
// tumbling are decoration only; the outcome is the server's.
function startDice() {
  const reduced = reducedMotion();
  const started = performance.now();
  const die = el.die;
  die.classList.remove('win', 'landed');
  die.classList.add('rolling');
  const spin = reduced ? 0 : setInterval(() => {
    die.dataset.face = String(1 + Math.floor(Math.random() * 6));
  }, 90);
  return async function stop(face, win) {
    const wait = reduced ? 0 : MIN_ROLL_MS - (performance.now() - started);
    if (wait > 0) await sleep(wait);
    clearInterval(spin);
    die.classList.remove('rolling');
    if (face) {
      die.dataset.face = String(face);
      die.classList.toggle('win', Boolean(win));
      if (!reduced) die.classList.add('landed');
    }
  };
}

// The request_id of the roll awaiting a definitive answer. Kept in memory
// and in sessionStorage, so a reload after a lost answer replays the same
// draw instead of spending another dice.
function pendingRequestId() {
  if (!state.pendingId) {
    const saved = store.get(pendingKey);
    state.pendingId = saved && REQUEST_ID_RE.test(saved) ? saved : newRequestId();
    store.set(pendingKey, state.pendingId);
  }
  return state.pendingId;
}

function clearPendingRequestId() {
  state.pendingId = null;
  store.del(pendingKey);
}

async function roll() {
  if (!canRoll()) return;
  state.rolling = true;
  updateRoll();
  say(null, '');
  delete el.result.dataset.outcome;
  el.result.replaceChildren(t.rolling);

  // Reused until a definitive answer: a retry replays, never double-spends.
  const requestId = pendingRequestId();
  const stop = startDice();
  const r = await api('POST', 'draws', { request_id: requestId });

  if (r.ok) {
    clearPendingRequestId();
    const draw = r.data.draw || {};
    const prize = draw.prize && draw.prize.name ? draw.prize : null;
    // A win lands on 6 (gold); a miss on a face 1-5 that follows the draw id.
    await stop(prize ? 6 : 1 + (Math.abs(Number(draw.id) || 0) % 5), Boolean(prize));
    setBalance(r.data.balance, r.seq);
    if (prize) {
      const main = document.createElement('strong');
      main.textContent = t.win(prize.name);
      const note = document.createElement('span');
      note.className = 'note';
      note.textContent = t.winNote;
      el.result.replaceChildren(main, note);
    } else {
      el.result.replaceChildren(t.miss);
    }
    el.result.dataset.outcome = prize ? 'win' : 'miss';
    state.rolling = false;
    updateRoll();
    refreshMe();
    return;
  }

  await stop(null);
  el.result.replaceChildren();
  if (!isTransient(r)) clearPendingRequestId(); // definitive: nothing was spent
  state.rolling = false;
  sayError(r, roll);
  if (r.code === 'no_tickets') {
    // The error carries no balance: ask for the real one.
    const b = await api('GET', 'balance');
    if (b.ok) setBalance(b.data.balance, b.seq);
  }
}

// ---------------------------------------------------------- invite actions

function copyStatus(text) {
  el.copyStatus.textContent = text;
}

// execCommand fallback for http:// pages and old browsers.
function legacyCopy(text) {
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.className = 'offscreen';
  document.body.append(ta);
  ta.select();
  ta.setSelectionRange(0, text.length);
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  el.copy.focus();
  return ok;
}

async function copyLink() {
  const url = state.inviteUrl;
  if (!url) return;
  let ok = false;
  if (window.isSecureContext && navigator.clipboard && typeof navigator.clipboard.writeText === 'function') {
    try { await navigator.clipboard.writeText(url); ok = true; } catch { /* denied: fall back */ }
  }
  if (!ok) ok = legacyCopy(url);
  if (!ok) {
    // Leave the link selected so a long press / Ctrl+C copies it.
    const sel = window.getSelection && window.getSelection();
    if (sel) sel.selectAllChildren(el.inviteLink);
  }
  copyStatus(ok ? t.copied : t.copyFailed);
}

async function shareLink() {
  const url = state.inviteUrl;
  if (!url) return;
  const data = { title: (state.promotion && state.promotion.name) || t.title, text: t.shareText, url };
  if (typeof navigator.canShare === 'function' && !navigator.canShare(data)) {
    await copyLink();
    return;
  }
  try {
    await navigator.share(data);
  } catch (e) {
    if (!e || e.name !== 'AbortError') copyStatus(t.shareFailed); // AbortError: user closed the sheet
  }
}

// -------------------------------------------------------------------- start

function applyText() {
  document.documentElement.lang = LANG;
  document.title = t.pageTitle;
  for (const node of document.querySelectorAll('[data-i18n]')) {
    const s = t[node.dataset.i18n];
    if (typeof s === 'string') node.textContent = s;
  }
  el.inviteLink.textContent = t.inviteLinkLoading;
}

applyText();
if (typeof navigator.share === 'function') el.share.hidden = false;

el.roll.addEventListener('click', () => { roll(); });
el.retry.addEventListener('click', () => {
  const action = retryAction;
  if (action) action();
});
el.copy.addEventListener('click', () => { copyLink(); });
el.share.addEventListener('click', () => { shareLink(); });

// Coming back to the tab (e.g. after sharing): friends may have joined.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.loaded && state.authorized &&
      !state.rolling && !state.loading && Date.now() - state.lastMeAt > REFRESH_EVERY_MS) {
    refreshMe();
  }
});

load();
