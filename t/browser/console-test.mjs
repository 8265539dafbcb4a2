// console-test.mjs - drives the web console in the system Chromium through
// playwright-core (no browser download) and reports every check as one
// JSON line on stdout:
//
//   {"ok":true,"name":"..."}          a check (t/t0520-console.t makes it a TAP point)
//   {"diag":"..."}                    a note
//   {"shown":"tables","value":{...}}  what the page showed, for the caller
//                                     to compare with luckydicectl stats --json
//
// Usage: node console-test.mjs CONFIG.json, where the config gives base
// (the stack's URL), chromium, shots (a directory for screenshots), promo,
// operators {vera: viewer, sam: support, olga: owner, gone: disabled}
// (sign-in tokens), user_token (a user's token), player {uid, token} (a
// user who plays while the page watches), support_user (a user with a
// story) and dead {uid, event} (a user whose reward event is dead).
// Exits 0 when it ran to the end (failed checks are reported, not
// thrown), 1 on a crash, and kills the browser either way.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const BASE = cfg.base.replace(/\/$/, '');
const P = cfg.promo;
const WAIT_MS = 20000;
const DEADLINE_MS = 150000;

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const check = (cond, name, detail) => {
  emit({ ok: Boolean(cond), name });
  if (!cond && detail !== undefined) emit({ diag: `${name}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` });
  return Boolean(cond);
};
const is = (got, want, name) => check(got === want, name, { got, want });

let browser = null;
const deadline = setTimeout(async () => {
  emit({ ok: false, name: `the run finished within ${DEADLINE_MS / 1000} s` });
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}, DEADLINE_MS);

const requests = [];
const jsErrors = [];

// One operator's browser: its own cookies; locale chooses the language.
async function device(name, locale) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale,
    timezoneId: 'Asia/Seoul', serviceWorkers: 'block' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => jsErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every 4xx fetch as "Failed to load resource"; the
    // console expects those (401 before sign-in, 403, 409, 400, 404).
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      jsErrors.push(`${name}: console: ${m.text()}`);
    }
  });
  return { ctx, page, name };
}

async function shot(d, label) {
  await d.page.screenshot({ path: path.join(cfg.shots, `${label}.png`), fullPage: true });
}

const text = (d, sel) => d.page.locator(sel).textContent();
const visible = (d, sel) => d.page.locator(sel).isVisible();
const num = (s) => Number(String(s).replace(/[^0-9-]/g, ''));

async function open(d) {
  await d.page.goto(`${BASE}/console/#promo=${P}`, { waitUntil: 'load' });
  await d.page.waitForSelector('body[data-ready="1"]', { state: 'attached' });
}

async function signIn(d, token) {
  await d.page.fill('#token', token);
  await d.page.click('#signin-button');
}

// Waits for the campaign view's next poll after now.
async function nextPoll(d) {
  const n = Number(await d.page.evaluate(() => document.body.dataset.polls || '0'));
  await d.page.waitForFunction((k) => Number(document.body.dataset.polls || '0') > k, n,
    { timeout: WAIT_MS });
}

// A request from the page itself (its origin, its cookie): {status, json}.
function pageFetch(d, method, url, body) {
  return d.page.evaluate(async ([m, u, b]) => {
    const opt = { method: m, credentials: 'same-origin', headers: {} };
    if (b !== null) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(b); }
    const r = await fetch(u, opt);
    let j = null;
    try { j = await r.json(); } catch { /* none */ }
    return { status: r.status, json: j };
  }, [method, url, body === undefined ? null : body]);
}

// The user API, as a player's app calls it (outside the browser).
async function userApi(method, endpoint, token, body) {
  const r = await fetch(`${BASE}/api/promotions/${P}/${endpoint}`, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: method === 'POST' ? JSON.stringify(body || {}) : undefined,
  });
  return { status: r.status, json: await r.json() };
}

// Every number of the campaign's tables, by day and column.
function readTables(d) {
  return d.page.evaluate(() => {
    const out = {};
    const put = (day, k, v) => {
      if (day !== 'total') (out[day] ||= {})[k] = Number(v.replace(/[^0-9-]/g, ''));
    };
    for (const sel of ['#table-grants', '#table-draws', '#table-invites']) {
      for (const td of document.querySelectorAll(`${sel} td[data-day]`)) put(td.dataset.day, td.dataset.k, td.textContent);
    }
    for (const table of document.querySelectorAll('#wins table[data-prize]')) {
      for (const td of table.querySelectorAll('td[data-day]')) {
        put(td.dataset.day, `${table.dataset.prize}.${td.dataset.k}`, td.textContent);
      }
    }
    return out;
  });
}

// What some of the charts' bars and points say, by day.
function readBars(d) {
  return d.page.evaluate(() => {
    const out = {};
    const take = (sel, key) => {
      for (const n of document.querySelectorAll(sel)) (out[n.dataset.day] ||= {})[key] = Number(n.dataset.value);
    };
    take('#chart-draws rect[data-series="draws"]', 'draws');
    take('#chart-grants rect[data-series="visit"]', 'visit');
    take('#chart-grants rect[data-series="inviter"]', 'inviter');
    take('#chart-invites rect[data-series="credited"]', 'credited');
    take('#wins [data-prize="coffee"] rect[data-series="won"]', 'coffee.won');
    take('#wins [data-prize="cake"] circle[data-series="stock"]', 'cake.stock');
    return out;
  });
}

const todayDraws = async (d) => num(await text(d, '#table-draws tr.today td[data-k="draws"]'));

async function viewer() {
  const v = await device('viewer', 'ko-KR');
  await open(v);
  is(await v.page.locator('html').getAttribute('lang'), 'ko', 'a Korean browser gets the console in Korean');
  is(await v.page.title(), '럭키다이스 콘솔', 'its title is Korean');
  check(await visible(v, '#signin'), 'before sign-in the sign-in form shows');

  await signIn(v, cfg.user_token);
  await v.page.waitForFunction(() => document.getElementById('signin-error').textContent !== '');
  check(await visible(v, '#signin') && !(await visible(v, '#app')), 'a user token does not open the console',
    await text(v, '#signin-error'));
  await signIn(v, cfg.operators.gone);
  await v.page.waitForFunction(() => /disabled|중지|operator/.test(document.getElementById('signin-error').textContent));
  check((await text(v, '#signin-error')).includes('operator disabled'), 'nor a disabled operator\'s token',
    await text(v, '#signin-error'));

  await signIn(v, cfg.operators.vera);
  await v.page.waitForSelector('body[data-polls]', { state: 'attached' });
  check(await visible(v, '#campaign'), 'the viewer signs in: the campaign view');
  check((await text(v, '#who-name')).includes('vera'), 'her name is shown');
  check(!(await visible(v, '#tab-support')), 'a viewer has no support tab');
  check(!(await visible(v, '#watch')) && !(await visible(v, '#dead-box')) && !(await visible(v, '#owner')),
    'nor the watch lists, the dead events\' users or the pause');
  is(await v.page.locator('#chart-draws svg rect[data-series="draws"]').count(), 8,
    'the draws chart has a bar for each of the 8 days');
  const cookie = (await v.ctx.cookies()).find((c) => c.name === 'ld_console');
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/console/',
    'the session is an HttpOnly, SameSite=Strict cookie for /console/', cookie);
  check(!(await v.page.evaluate(() => document.cookie.includes('ld_console'))), 'which the page\'s script cannot read');

  const look = await pageFetch(v, 'GET', `/console/api/promotions/${P}/users/${cfg.support_user}`);
  is(look.status, 403, 'a viewer cannot look a user up (403)');
  const grant = await pageFetch(v, 'POST', `/console/api/promotions/${P}/users/${cfg.support_user}/grant`,
    { amount: 5, reason: 'viewer tries', ticket: 'T-VIEWER' });
  check(grant.status === 403 && grant.json.error === 'forbidden', 'nor grant (403 forbidden)', grant);
  await v.page.goto(`${BASE}/console/#promo=${P}&view=support&uid=${cfg.support_user}`);
  await v.page.reload({ waitUntil: 'load' });
  await v.page.waitForSelector('body[data-polls]', { state: 'attached' });
  check(await visible(v, '#campaign') && !(await visible(v, '#support')),
    'a link to the support view opens the campaign view for a viewer');

  // the campaign moves while she watches
  const before = await todayDraws(v);
  const visit = await userApi('POST', 'visit', cfg.player.token);
  const roll = await userApi('POST', 'draws', cfg.player.token, { request_id: 'player-roll-0001' });
  check(visit.status === 200 && roll.status === 200, 'a player visits and rolls meanwhile', [visit, roll]);
  await v.page.waitForFunction((b) => {
    const td = document.querySelector('#table-draws tr.today td[data-k="draws"]');
    return td && Number(td.textContent.replace(/[^0-9]/g, '')) === b + 1;
  }, before, { timeout: WAIT_MS });
  is(await todayDraws(v), before + 1, 'the page shows the new draw within a poll, without a reload');
  await shot(v, 'viewer-campaign-ko');
  return v;
}

async function support() {
  const s = await device('support', 'en-US');
  await open(s);
  is(await s.page.locator('html').getAttribute('lang'), 'en', 'an English browser gets English');
  await signIn(s, cfg.operators.sam);
  await s.page.waitForSelector('body[data-polls]', { state: 'attached' });
  check(await visible(s, '#tab-support'), 'support signs in: the support tab is there');
  await s.page.waitForSelector('#inviters tr[data-uid]', { state: 'attached' });
  is(num(await text(s, `#inviters tr[data-uid="${cfg.support_user}"] td[data-k="credited"]`)), 3,
    `the top inviters list ${cfg.support_user} with 3 credited invites`);
  check(await visible(s, '#dead-box') && await s.page.locator(`#dead-events tr[data-event="${cfg.dead.event}"]`).count() === 1,
    'the dead reward is listed with its user');
  await shot(s, 'console-campaign');

  await s.page.click('#tab-support');
  await s.page.fill('#uid', 'nobody');
  await s.page.click('#search');
  await s.page.waitForFunction(() => document.getElementById('user-message').textContent.includes('nobody'));
  check((await text(s, '#user-message')).includes('There is no user nobody'), 'an unknown user is said to be unknown');

  // the balance explained
  const uid = cfg.support_user;
  await s.page.fill('#uid', uid);
  await s.page.click('#search');
  await s.page.waitForSelector(`body[data-user="${uid}"]`, { state: 'attached' });
  const me = await userApi('GET', 'me', cfg.user_token);
  const shown = Number(await s.page.locator('#explain').getAttribute('data-balance'));
  is(shown, me.json.balance, `${uid}'s balance as the console explains it is the one her own app shows (${me.json.balance})`);
  check((await text(s, '#explain')).startsWith(`${uid} has ${me.json.balance} dice.`), 'in words', await text(s, '#explain'));
  is(Number(await s.page.locator('#parts li[data-reason="visit"]').getAttribute('data-dice')), 1, 'one for her first visit');
  is(Number(await s.page.locator('#parts li[data-reason="inviter"]').getAttribute('data-dice')), 3, 'three for inviting three friends');
  is(await s.page.locator('#cache').getAttribute('data-state'), 'hit', 'the cache beside the ledger: the same');
  is(await s.page.locator('#story li[data-kind^="grant-"]').count(), me.json.grants.length, 'every grant in her story');
  is(await s.page.locator('#story li[data-kind="win"], #story li[data-kind="miss"]').count(), me.json.draws.length,
    'every draw in her story');

  // a grant: refused without a ticket, cancelled, done with one, refused again
  const posts = () => requests.filter((u) => u.includes('/grant')).length;
  await s.page.fill('#amount', '2');
  await s.page.fill('#reason', 'compensation for a lost roll');
  await s.page.fill('#ticket', '');
  await s.page.click('#grant');
  check(await visible(s, '#confirm'), 'a grant asks for confirmation first');
  check((await text(s, '#confirm-text')).includes(`Grant 2 dice to ${uid}`), 'saying what it will do', await text(s, '#confirm-text'));
  await s.page.click('#confirm-yes');
  await s.page.waitForSelector('#change-status[data-status]', { state: 'attached' });
  is(await s.page.locator('#change-status').getAttribute('data-status'), '400', 'without a ticket it is refused (400)');
  check((await text(s, '#change-status')).includes('ticket'), 'and says the ticket is missing', await text(s, '#change-status'));

  await s.page.fill('#ticket', 'T-1001');
  const n0 = posts();
  await s.page.click('#grant');
  await s.page.click('#confirm-no');
  check(!(await visible(s, '#confirm')) && posts() === n0, 'cancelled at the confirmation: nothing is sent');

  await s.page.evaluate(() => document.getElementById('change-status').removeAttribute('data-status'));
  await s.page.click('#grant');
  await s.page.click('#confirm-yes');
  await s.page.waitForSelector('#change-status[data-status]', { state: 'attached' });
  is(await s.page.locator('#change-status').getAttribute('data-status'), '200', 'with ticket T-1001 the grant is made');
  await s.page.waitForFunction((b) => Number(document.getElementById('explain').dataset.balance) === b + 2, shown);
  is(Number(await s.page.locator('#explain').getAttribute('data-balance')), shown + 2, 'the balance shown is 2 more');
  is((await userApi('GET', 'balance', cfg.user_token)).json.balance, shown + 2, 'and so is the one her app reads');
  check((await text(s, '#story')).includes('Support granted +2 (ticket T-1001: compensation for a lost roll (by sam))'),
    'her story has the grant, the ticket and who made it');
  await shot(s, 'console-support');

  await s.page.evaluate(() => document.getElementById('change-status').removeAttribute('data-status'));
  await s.page.click('#grant');
  await s.page.click('#confirm-yes');
  await s.page.waitForSelector('#change-status[data-status]', { state: 'attached' });
  is(await s.page.locator('#change-status').getAttribute('data-status'), '409', 'the same ticket again is refused (409)');

  // a dead reward sent again
  await s.page.fill('#uid', cfg.dead.uid);
  await s.page.click('#search');
  await s.page.waitForSelector(`body[data-user="${cfg.dead.uid}"]`, { state: 'attached' });
  const button = s.page.locator(`#story button[data-retry="${cfg.dead.event}"]`);
  is(await button.count(), 1, 'the dead reward has a send-again button in the story');
  await s.page.fill('#ticket', 'T-1002');
  await s.page.fill('#reason', 'the reward service fixed the coupon');
  await s.page.evaluate(() => document.getElementById('change-status').removeAttribute('data-status'));
  await button.click();
  check((await text(s, '#confirm-text')).includes(`#${cfg.dead.event}`), 'it asks for confirmation too');
  await s.page.click('#confirm-yes');
  await s.page.waitForSelector('#change-status[data-status]', { state: 'attached' });
  is(await s.page.locator('#change-status').getAttribute('data-status'), '200', 'the dead reward is sent again');
  await s.page.waitForSelector(`#story li[data-event="${cfg.dead.event}"][data-kind="event-pending"]`, { state: 'attached' });
  check(true, 'and shows as pending in the story');

  await s.page.click('#signout');
  await s.page.waitForSelector('body[data-view="signin"]', { state: 'attached' });
  const after = await pageFetch(s, 'GET', '/console/api/session');
  is(after.status, 401, 'signed out: the session is gone');
  await s.ctx.close();
}

async function owner(v) {
  const o = await device('owner', 'en-US');
  await open(o);
  await signIn(o, cfg.operators.olga);
  await o.page.waitForSelector('body[data-polls]', { state: 'attached' });
  check(await visible(o, '#owner'), 'the owner sees the pause');

  // pause: refused without a ticket, then done; players are refused; resume
  await o.page.fill('#pause-reason', 'the reward service is down');
  await o.page.fill('#pause-ticket', '');
  await o.page.click('#pause');
  check((await text(o, '#confirm-text')).includes(`Pause promotion ${P}?`), 'pausing asks for confirmation');
  await o.page.click('#confirm-yes');
  await o.page.waitForSelector('#message[data-status]', { state: 'attached' });
  is(await o.page.locator('#message').getAttribute('data-status'), '400', 'without a ticket the pause is refused (400)');
  await o.page.fill('#pause-ticket', 'T-2001');
  await o.page.evaluate(() => document.getElementById('message').removeAttribute('data-status'));
  await o.page.click('#pause');
  await o.page.click('#confirm-yes');
  await o.page.waitForSelector('#message[data-status]', { state: 'attached' });
  is(await o.page.locator('#message').getAttribute('data-status'), '200', 'with ticket T-2001 the promotion is paused');
  await o.page.waitForSelector('#promo-state[data-paused="1"]', { state: 'attached' });
  check((await text(o, '#pause-state')).includes('the reward service is down'), 'the page says it is paused, and why');
  await v.page.waitForSelector('#promo-state[data-paused="1"]', { state: 'attached', timeout: WAIT_MS });
  check((await text(v, '#promo-state')).includes('일시 중지됨'), 'the viewer\'s page says so too, in Korean');
  // the workers look at the promotions at most once a second
  let r = null;
  for (let i = 0; i < 30; i++) {
    r = await userApi('POST', 'draws', cfg.player.token, { request_id: 'player-roll-paused' });
    if (r.status === 403) break;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  check(r.status === 403 && r.json.error === 'promotion_paused', 'a player\'s roll meanwhile is refused: promotion_paused', r);
  const again = await pageFetch(o, 'POST', `/console/api/promotions/${P}/pause`,
    { ticket: 'T-2001', reason: 'again' });
  is(again.status, 409, 'pausing a paused promotion changes nothing (409)');

  await o.page.fill('#pause-reason', 'the reward service is back');
  await o.page.click('#resume');
  await o.page.click('#confirm-yes');
  await o.page.waitForSelector('#promo-state[data-paused="0"]', { state: 'attached' });
  check(true, 'resumed: the page says it runs again');
  for (let i = 0; i < 30; i++) {
    r = await userApi('POST', 'draws', cfg.player.token, { request_id: 'player-roll-resumed' });
    if (r.status !== 403) break;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  check(r.status === 200 || (r.status === 409 && r.json.error === 'no_tickets'),
    'a player\'s roll is taken again', r);
  await shot(o, 'owner-campaign');
  await o.ctx.close();
}

async function main() {
  fs.mkdirSync(cfg.shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  emit({ diag: `chromium ${browser.version()}` });
  const v = await viewer();
  await support();
  await owner(v);

  // the viewer's page, still open, after every change: its numbers
  await nextPoll(v);
  await nextPoll(v);
  emit({ shown: 'tables', value: await readTables(v) });
  emit({ shown: 'bars', value: await readBars(v) });
  await shot(v, 'viewer-campaign-end');

  const outside = requests.filter((u) => !u.startsWith(BASE) && !u.startsWith('data:'));
  check(outside.length === 0, 'nothing was fetched from anywhere else', outside.slice(0, 5));
  check(jsErrors.length === 0, 'no script errors nor blocked content on any page', jsErrors);
  await browser.close();
  clearTimeout(deadline);
}

main().catch(async (e) => {
  emit({ ok: false, name: `the browser test crashed: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}` });
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
});
