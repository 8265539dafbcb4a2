// page-test.mjs - drives the promotion page in the system Chromium through
// playwright-core (no browser download) and reports every check as one JSON
// line on stdout:
//
//   {"ok":true,"name":"..."}              a check (t/t0500-page.t makes it a TAP point)
//   {"diag":"..."}                        a note
//   {"shown":{"uid":"B","promo":"p","balance":1}}   what the page showed, for
//                                         the caller to compare with the API
//
// Usage: node page-test.mjs CONFIG.json, where the config gives base (the
// stack's URL, demo sign-in links on), tls_on and tls_off (the shipped
// site over https in front of the same stack, with demo links turned on
// and as shipped), chromium (the executable), shots (a directory for
// screenshots), promo ids {active, future, over, paused}, tokens {A, B, ...}
// and ctl {program, config} (luckydicectl and the stack's config, to resume
// the paused promotion).
// Exits 0 when it ran to the end (failed checks are reported, not thrown),
// 1 on a crash, and kills the browser either way.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const BASE = cfg.base.replace(/\/$/, '');
const TLS_ON = cfg.tls_on.replace(/\/$/, '');
const TLS_OFF = cfg.tls_off.replace(/\/$/, '');
const WAIT_MS = 20000;        // generous: a loaded CI machine is slow
const DEADLINE_MS = 90000;    // the whole run

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

// Everything the pages did that a check looks at, over the whole run.
const requests = [];
const jsErrors = [];
let shotNo = 0;

// A browser context is one user's device: its own cookies and storage.
// netFail: this device's requests are cut on purpose, so Chromium's
// "Failed to load resource: net::ERR_FAILED" console line is expected.
// base: the site it signs in to (the https ones have a self-signed
// certificate).
async function device(name, { width = 390, height = 844, token = null, netFail = false, base = BASE } = {}) {
  const ctx = await browser.newContext({
    viewport: { width, height },
    locale: 'ko-KR',
    timezoneId: 'Asia/Seoul',
    serviceWorkers: 'block',
    ignoreHTTPSErrors: base !== BASE,
  });
  if (token) {
    // Sign-in the way a host app's web view does: the ld_token cookie.
    await ctx.addCookies([{ name: 'ld_token', value: token, url: base }]);
  }
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => jsErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every 4xx fetch as "Failed to load resource"; the
    // page expects those (409 no_tickets, 403 not active, ...).
    const expected = /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()) ||
      (netFail && /^Failed to load resource: net::ERR_FAILED$/.test(m.text()));
    if (m.type() === 'error' && !expected) {
      jsErrors.push(`${name}: console: ${m.text()}`);
    }
  });
  return { ctx, page, name };
}

async function open(d, urlPath, base = BASE) {
  const url = base + urlPath;
  await d.page.goto(url, { waitUntil: 'load' });
  await d.page.waitForSelector('body[data-ready="1"]', { state: 'attached' });
}

async function reload(d) {
  await d.page.reload({ waitUntil: 'load' });
  await d.page.waitForSelector('body[data-ready="1"]', { state: 'attached' });
}

async function shot(d, label) {
  shotNo += 1;
  const file = path.join(cfg.shots, `${String(shotNo).padStart(2, '0')}-${label}.png`);
  await d.page.screenshot({ path: file, fullPage: true });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (d, sel) => d.page.locator(sel).textContent();
const attr = (d, sel, a) => d.page.locator(sel).getAttribute(a);
const disabled = (d, sel) => d.page.locator(sel).isDisabled();

// Clicks roll and waits until the roll is over (no data-busy) and either a
// result or a message is shown.
async function roll(d) {
  await d.page.click('#roll');
  await d.page.waitForFunction(() => {
    const b = document.getElementById('roll');
    return !b.hasAttribute('data-busy') &&
      (document.getElementById('result').hasAttribute('data-outcome') ||
       document.getElementById('message').hasAttribute('data-code'));
  }, null, { timeout: WAIT_MS });
}

async function noHorizontalScroll(d) {
  return d.page.evaluate(() => document.scrollingElement.scrollWidth);
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
  const P = cfg.promos.active;
  const T = cfg.tokens;

  // 1. A opens the page: the visit grant, 1 dice.
  const a = await device('A', { token: T.A });
  await open(a, `/?promo=${P}`);
  is(await text(a, '#balance'), '1', 'A opens the page: it shows 1 dice');
  is(await attr(a, '#message', 'data-code'), 'visit_bonus', 'A sees the first-visit message');
  is(await a.page.locator('html').getAttribute('lang'), 'ko', 'the page is in Korean for a ko-KR browser');
  check((await text(a, '#roll')).includes('주사위'), 'the roll button is named in Korean', await text(a, '#roll'));
  check(!(await disabled(a, '#roll')), 'the roll button is enabled');
  const link = await attr(a, '#invite-link', 'data-url');
  check(/^http:\/\/127\.0\.0\.1:\d+\/i\/[A-Za-z0-9_-]+\?promo=/.test(link || ''), 'A sees an invite link /i/CODE?promo=', link);
  is(await text(a, '#invite-link'), link, 'the invite link is shown as text');
  check(!(await disabled(a, '#copy')), 'the copy button is enabled');
  is(await text(a, '#friends'), '0', 'A has no friends credited yet');
  is(await a.page.locator('#history li.grant').count(), 1, 'A\'s history shows the visit grant');
  await shot(a, 'A-first-visit');

  // 2. B opens A's link: visit + invite bonus, 2 dice.
  const b = await device('B', { token: T.B });
  await open(b, new URL(link).pathname + new URL(link).search);
  is(await text(b, '#balance'), '2', 'B opens A\'s invite link: it shows 2 dice');
  is(await attr(b, '#message', 'data-code'), 'invite_bonus', 'B sees the invite bonus message');
  is(await attr(b, '#message', 'data-kind'), 'success', 'the bonus message is shown as a success');
  check((await text(b, '#message')).includes('보너스'), 'the bonus message is in Korean', await text(b, '#message'));
  await shot(b, 'B-invite-bonus');

  await reload(a);
  is(await text(a, '#balance'), '2', 'A reloads: it shows 2 dice');
  is(await text(a, '#friends'), '1', 'A has 1 friend credited');
  await shot(a, 'A-after-invite');

  // A opens their own link: no bonus, and the page says why.
  await open(a, new URL(link).pathname + new URL(link).search);
  is(await attr(a, '#message', 'data-code'), 'self_invite', 'A opening their own link sees the self-invite message');
  is(await text(a, '#balance'), '2', 'and still 2 dice');

  // B reopens the link: already credited, nothing more.
  const b2 = await device('B-second-device', { token: T.B });
  await open(b2, new URL(link).pathname + new URL(link).search);
  is(await attr(b2, '#message', 'data-code'), 'already_credited', 'B on another device sees "already credited"');
  is(await text(b2, '#balance'), '2', 'and still 2 dice');
  await b2.ctx.close();

  // 3. B rolls (the only prize has probability 1 and a stock of 1: a win).
  await reload(b);
  const drawBodies = [];
  b.page.on('request', (r) => { if (r.url().endsWith('/draws')) drawBodies.push(r.postData()); });
  const rollDone = roll(b);
  await b.page.waitForSelector('#roll[data-busy]', { state: 'attached' }).catch(() => {});
  check(await disabled(b, '#roll'), 'the roll button is disabled while the roll is in flight');
  await rollDone;
  is(await attr(b, '#result', 'data-outcome'), 'win', 'B rolls: the page shows the result (a win)');
  check((await text(b, '#result')).includes(cfg.prize_name), 'the result names the prize', await text(b, '#result'));
  is(await text(b, '#balance'), '1', 'B has 1 dice left');
  is(await b.page.locator('#die.win').count(), 1, 'the die lands on the winning face');
  await b.page.waitForFunction(() => document.querySelectorAll('#history li.draw').length === 1);
  check(true, 'B\'s history shows the roll');
  is(drawBodies.length, 1, 'one draw request was sent');
  check(/^\{"request_id":"[A-Za-z0-9_-]{8,64}"\}$/.test(drawBodies[0] || ''), 'it carries a request_id', drawBodies[0]);
  emit({ shown: { uid: 'B', promo: P, balance: Number(await text(b, '#balance')) } });
  await shot(b, 'B-rolled-win');

  // 4. C has 1 dice: a miss (stock gone), then a roll with no dice.
  const c = await device('C', { token: T.C });
  await open(c, `/?promo=${P}`);
  is(await text(c, '#balance'), '1', 'C opens the page: 1 dice');
  await roll(c);
  is(await attr(c, '#result', 'data-outcome'), 'miss', 'C rolls: a miss (the stock is gone)');
  is(await text(c, '#balance'), '0', 'C has 0 dice');
  check(!(await disabled(c, '#roll')), 'the roll button stays enabled at 0 dice (the API decides)');
  await shot(c, 'C-rolled-miss');
  await roll(c);
  is(await attr(c, '#message', 'data-code'), 'no_tickets', 'C rolls with no dice: the no-dice message');
  is(await attr(c, '#message', 'data-kind'), 'error', 'shown as an error');
  check((await text(c, '#message')).includes('주사위'), 'the no-dice message is in Korean', await text(c, '#message'));
  is(await c.page.locator('#result').getAttribute('data-outcome'), null, 'and no result');
  is(await text(c, '#balance'), '0', 'still 0 dice');
  check(await c.page.locator('#retry').isHidden(), 'no retry is offered for no dice');
  emit({ shown: { uid: 'C', promo: P, balance: Number(await text(c, '#balance')) } });
  await shot(c, 'C-no-dice');

  // 5. D's roll reaches the server but the answer is lost: the page offers
  // a retry, which sends the same request_id and gets the same draw.
  const d = await device('D', { token: T.D, netFail: true });
  await open(d, `/?promo=${P}`);
  const dBodies = [];
  let dropped = 0;
  await d.page.route('**/draws', async (route) => {
    dBodies.push(route.request().postData());
    if (dropped === 0) {
      dropped += 1;
      await route.fetch();          // the server spends the dice ...
      await route.abort('failed');  // ... and the page never hears back
    } else {
      await route.continue();
    }
  });
  await roll(d);
  is(await attr(d, '#message', 'data-code'), 'network', 'D\'s answer is lost: the network message');
  check(await d.page.locator('#retry').isVisible(), 'a retry button is offered');
  await shot(d, 'D-network-error');
  await d.page.click('#retry');
  await d.page.waitForSelector('#result[data-outcome]', { state: 'attached' });
  is(dBodies.length, 2, 'the retry sent the draw again');
  is(dBodies[1], dBodies[0], 'with the same request_id');
  is(await attr(d, '#result', 'data-outcome'), 'miss', 'the retry shows the result');
  is(await text(d, '#balance'), '0', 'D spent exactly 1 dice');
  emit({ shown: { uid: 'D', promo: P, balance: Number(await text(d, '#balance')) } });
  await shot(d, 'D-retried');
  await d.ctx.close();

  // 6. Promotions outside their days.
  for (const [which, label, words] of [['future', 'not started', '시작'], ['over', 'over', '끝났']]) {
    const e = await device(`E-${which}`, { token: T.E });
    await open(e, `/?promo=${cfg.promos[which]}`);
    is(await attr(e, '#message', 'data-code'), 'promotion_not_active', `a promotion ${label}: the not-active message`);
    check(await disabled(e, '#roll'), `a promotion ${label}: the roll button is disabled`);
    check((await text(e, '#message')).includes(words), `a promotion ${label}: the message says so in Korean`, await text(e, '#message'));
    is(await text(e, '#balance'), '0', `a promotion ${label}: the page shows 0 dice (no visit grant)`);
    await shot(e, `promotion-${which}`);
    await e.ctx.close();
  }

  // 6b. A paused promotion (luckydicectl promo pause): the page says so
  // and takes no roll, while the dice already held still show; resumed
  // (the workers see it within a second), the same page works again.
  const l = await device('L-paused', { token: T.L });
  const paused = cfg.promos.paused;
  await open(l, `/?promo=${paused}`);
  is(await attr(l, '#message', 'data-code'), 'promotion_paused', 'a paused promotion: the paused message');
  check((await text(l, '#message')).includes('멈췄'), 'a paused promotion: the message says so in Korean',
    await text(l, '#message'));
  check(await disabled(l, '#roll'), 'a paused promotion: the roll button is disabled');
  is(await text(l, '#balance'), '2', 'a paused promotion: the dice held still show (reads go on)');
  await shot(l, 'L-paused');
  execFileSync(cfg.ctl.program, ['promo', 'resume', paused],
    { env: { ...process.env, LUCKYDICE_CONFIG: cfg.ctl.config } });
  await sleep(1500);
  await reload(l);
  is(await attr(l, '#message', 'data-code'), 'visit_bonus', 'resumed: the first visit is granted now');
  check(!(await disabled(l, '#roll')), 'resumed: the roll button is enabled');
  is(await text(l, '#balance'), '3', 'resumed: 2 + the visit die');
  emit({ shown: { uid: 'L', promo: paused, balance: Number(await text(l, '#balance')) } });
  await shot(l, 'L-resumed');
  await l.ctx.close();

  // 7. Signed out: no cookie, no header.
  const f = await device('signed-out');
  await open(f, `/?promo=${P}`);
  is(await attr(f, '#message', 'data-code'), 'unauthorized', 'signed out: the sign-in message');
  check(await disabled(f, '#roll'), 'signed out: the roll button is disabled');
  is(await text(f, '#balance'), '', 'signed out: no number is invented');
  check((await text(f, '#invite-link')).includes('불러오지 못했어요'), 'signed out: the invite link says it could not load',
    await text(f, '#invite-link'));
  check(await disabled(f, '#copy'), 'signed out: nothing to copy');
  await shot(f, 'signed-out');
  await f.ctx.close();

  // 8. Sign-in through a demo link (?token=), where the deployment turns
  // them on, and through a Bearer token the host app puts in
  // sessionStorage (sent as Authorization).
  const g = await device('G-link');
  await open(g, `/?promo=${P}&token=${encodeURIComponent(T.G)}`);
  is(await text(g, '#balance'), '1', 'demo links on: a ?token= link signs in');
  check(!g.page.url().includes('token='), 'the token is taken out of the address bar', g.page.url());
  const cookies = await g.ctx.cookies(BASE);
  check(cookies.some((k) => k.name === 'ld_token' && k.value === T.G), 'the token is kept in the ld_token cookie');
  await g.ctx.close();

  // The same over https (the shipped site, demo links turned on): the
  // cookie the page sets is Secure.
  const k = await device('K-link-https', { base: TLS_ON });
  await open(k, `/?promo=${P}&token=${encodeURIComponent(T.K)}`, TLS_ON);
  is(await text(k, '#balance'), '1', 'over https with demo links on: the link signs in');
  const kc = (await k.ctx.cookies(TLS_ON)).find((c) => c.name === 'ld_token');
  check(kc && kc.value === T.K && kc.secure === true, 'over https the ld_token cookie is Secure', kc);
  await shot(k, 'K-https-link');
  await k.ctx.close();

  // Demo links off (the shipped site as shipped): someone else's link
  // does not sign this browser in as them; the previous sign-in stays.
  const i = await device('I-link-ignored', { base: TLS_OFF, token: T.I });
  await open(i, `/?promo=${P}&token=${encodeURIComponent(T.J)}`, TLS_OFF);
  is(await text(i, '#balance'), '3', 'demo links off: a ?token= link is ignored, the page shows I\'s 3 dice');
  is(await attr(i, '#message', 'data-code'), 'visit_bonus', 'and I\'s first visit');
  check(!i.page.url().includes('token='), 'the ignored token is taken out of the address bar too', i.page.url());
  const ic = (await i.ctx.cookies(TLS_OFF)).filter((c) => c.name === 'ld_token');
  check(ic.length === 1 && ic[0].value === T.I, 'the ld_token cookie is still I\'s', ic.map((c) => c.value.slice(0, 12)));
  emit({ shown: { uid: 'I', promo: P, balance: Number(await text(i, '#balance')) } });
  await shot(i, 'I-link-ignored');
  await i.ctx.close();
  const h = await device('H-bearer');
  await h.ctx.addInitScript((tok) => { sessionStorage.setItem('ld_token', tok); }, T.H);
  const hAuth = [];
  h.page.on('request', (r) => { if (r.url().includes('/api/')) hAuth.push(r.headers().authorization || ''); });
  await open(h, `/?promo=${P}`);
  is(await text(h, '#balance'), '1', 'a Bearer token from the host app signs in');
  check(hAuth.length > 0 && hAuth.every((x) => x === `Bearer ${T.H}`), 'every API request carried Authorization: Bearer', hAuth);
  await h.ctx.close();

  // 9. 320 px wide, with a long invite link on the page.
  const n = await device('narrow', { width: 320, height: 640, token: T.A });
  await open(n, `/?promo=${P}`);
  const sw = await noHorizontalScroll(n);
  check(sw <= 320, 'at 320 px wide nothing scrolls sideways', { scrollWidth: sw });
  const small = await n.page.evaluate(() => [...document.querySelectorAll('button')]
    .filter((x) => !x.hidden && x.getBoundingClientRect().height < 44).map((x) => x.id));
  check(small.length === 0, 'every visible button is at least 44 px tall', small);
  const unnamed = await n.page.evaluate(() => [...document.querySelectorAll('button')]
    .filter((x) => !x.textContent.trim() && !x.getAttribute('aria-label')).map((x) => x.id));
  check(unnamed.length === 0, 'every button has a name', unnamed);
  await shot(n, 'A-320px');
  await n.ctx.close();

  // 10. The whole run: nothing fetched from elsewhere, no script error.
  const foreign = requests.filter((u) => ![BASE, TLS_ON, TLS_OFF].some((b) => u.startsWith(`${b}/`)));
  check(requests.length > 0 && foreign.length === 0, `all ${requests.length} requests went to the sites under test`, foreign.slice(0, 5));
  check(jsErrors.length === 0, 'no JavaScript error', jsErrors.slice(0, 10));
}

let code = 0;
try {
  await main();
} catch (e) {
  emit({ ok: false, name: 'the browser run completed', });
  emit({ diag: String(e && e.stack || e) });
  code = 1;
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
