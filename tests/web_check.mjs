// web_check.mjs — drives headless Chromium over the DevTools pipe for
// tests/test_app_web.sh: opens a URL, waits until mrag's page says it is done
// (body[data-state] = done | error), prints what the page shows as key=value
// lines (values JSON-encoded) and optionally saves a screenshot.
// No packages: Node's child_process and Chromium's --remote-debugging-pipe
// (fd 3 = commands to the browser, fd 4 = replies; NUL-separated JSON).
//
// usage: node tests/web_check.mjs URL [--screenshot FILE] [--screenshot-dark FILE]
//        [--screenshot-phone FILE] [--timeout SECONDS]
// (dark: prefers-color-scheme: dark; phone: 390 CSS px wide, touch, scale 2)
// exit: 0 when the page reached a final state, 1 otherwise (timeout, crash).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let url = null, shot = null, shotDark = null, shotPhone = null, timeoutS = 40;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--screenshot') shot = args[++i];
  else if (args[i] === '--screenshot-dark') shotDark = args[++i];
  else if (args[i] === '--screenshot-phone') shotPhone = args[++i];
  else if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else url = args[i];
}
if (!url) {
  console.error('usage: node tests/web_check.mjs URL [--screenshot FILE] [--timeout SECONDS]');
  process.exit(2);
}

const browser = process.env.CHROMIUM || 'chromium';
const profile = mkdtempSync(join(tmpdir(), 'mrag-web-'));
const chrome = spawn(browser, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--no-first-run', '--no-default-browser-check', '--disable-extensions',
  '--disable-background-networking', '--disable-sync', '--mute-audio',
  '--hide-scrollbars', '--window-size=1000,1200', '--remote-debugging-pipe',
  `--user-data-dir=${profile}`, 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let chromeErr = '';
chrome.stderr.on('data', (d) => { chromeErr = (chromeErr + d).slice(-4000); });

const toBrowser = chrome.stdio[3], fromBrowser = chrome.stdio[4];
let nextId = 1, inbuf = '';
const pending = new Map();
const logs = [];       // console errors, exceptions, CSP reports from the page

fromBrowser.on('data', (d) => {
  inbuf += d.toString('utf8');
  let z;
  while ((z = inbuf.indexOf('\0')) >= 0) {
    const msg = JSON.parse(inbuf.slice(0, z));
    inbuf = inbuf.slice(z + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(`${msg.error.message} (${msg.error.code})`));
      else resolve(msg.result);
    } else if (msg.method === 'Runtime.exceptionThrown') {
      const d2 = msg.params.exceptionDetails;
      logs.push('exception: ' + ((d2.exception && d2.exception.description) || d2.text));
    } else if (msg.method === 'Runtime.consoleAPICalled' && msg.params.type === 'error') {
      logs.push('console.error: ' + msg.params.args.map((a) => a.value ?? a.description).join(' '));
    } else if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error') {
      logs.push(`log(${msg.params.entry.source}): ${msg.params.entry.text}`);
    }
  }
});

function send(method, params = {}, sessionId) {
  const id = nextId++;
  const m = { id, method, params };
  if (sessionId) m.sessionId = sessionId;
  toBrowser.write(JSON.stringify(m) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What the page shows, read in the page (textContent only).
const SUMMARY = `(() => {
  const q = (s) => document.querySelector(s);
  const err = q('#error'), note = q('#notice');
  return JSON.stringify({
    state: document.body.getAttribute('data-state'),
    status: document.body.getAttribute('data-status'),
    tokens: Number(q('#answer').getAttribute('data-tokens')),
    answer: q('#answer').textContent,
    cites: q('#answer').querySelectorAll('a.cite').length,
    sources: Array.from(document.querySelectorAll('#sources li')).map((li) => li.textContent),
    links: Array.from(document.querySelectorAll('#sources li a')).map((a) => a.getAttribute('href')),
    error: err.hidden ? '' : err.textContent,
    notice: note.hidden ? '' : note.textContent,
    status_line: q('#status').textContent,
    key_in_url: location.search.indexOf('key=') >= 0,
    title: document.title,
    injected: document.querySelectorAll('#answer *:not(a.cite), #sources img, #sources script, #sources iframe, #events *:not(li)').length,
  });
})()`;

let rc = 1;
const deadline = Date.now() + timeoutS * 1000;
const killer = setTimeout(() => { console.log('result=' + JSON.stringify('timeout')); finish(1); }, timeoutS * 1000 + 5000);

function finish(code) {
  clearTimeout(killer);
  try { chrome.kill('SIGKILL'); } catch (e) { /* gone */ }
  try { rmSync(profile, { recursive: true, force: true }); } catch (e) { /* best effort */ }
  process.exit(code);
}

try {
  const { targetInfos } = await send('Target.getTargets');
  let page = targetInfos.find((t) => t.type === 'page');
  if (!page) page = { targetId: (await send('Target.createTarget', { url: 'about:blank' })).targetId };
  const { sessionId } = await send('Target.attachToTarget', { targetId: page.targetId, flatten: true });
  await send('Page.enable', {}, sessionId);
  await send('Runtime.enable', {}, sessionId);
  await send('Log.enable', {}, sessionId);
  await send('Page.navigate', { url }, sessionId);
  let s = null;
  while (Date.now() < deadline) {
    await sleep(150);
    let r;
    try {
      r = await send('Runtime.evaluate', { expression: SUMMARY, returnByValue: true }, sessionId);
    } catch (e) { continue; }   // navigating: no context yet
    if (!r.result || typeof r.result.value !== 'string') continue;
    s = JSON.parse(r.result.value);
    if (s.state === 'done' || s.state === 'error') break;
  }
  if (!s) throw new Error('the page never ran its script');
  for (const [k, v] of Object.entries(s)) console.log(`${k}=${JSON.stringify(v)}`);
  console.log('logs=' + JSON.stringify(logs));
  // full-page screenshot at a given width (the height follows the content)
  const capture = async (file, width, scale, mobile, dark) => {
    await send('Emulation.setEmulatedMedia',
               { features: [{ name: 'prefers-color-scheme', value: dark ? 'dark' : 'light' }] }, sessionId);
    await send('Emulation.setDeviceMetricsOverride',
               { width, height: 800, deviceScaleFactor: scale, mobile }, sessionId);
    const m = await send('Page.getLayoutMetrics', {}, sessionId);
    const h = Math.min(4000, Math.ceil(m.cssContentSize.height));
    await send('Emulation.setDeviceMetricsOverride',
               { width, height: Math.max(600, h), deviceScaleFactor: scale, mobile }, sessionId);
    const img = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
    writeFileSync(file, Buffer.from(img.data, 'base64'));
    if (mobile) {
      const r = await send('Runtime.evaluate', { expression: 'document.documentElement.scrollWidth', returnByValue: true }, sessionId);
      console.log('phone_scroll_width=' + JSON.stringify(r.result.value));
    }
  };
  if (shot) { await capture(shot, 1000, 1, false, false); console.log('screenshot=' + JSON.stringify(shot)); }
  if (shotDark) { await capture(shotDark, 1000, 1, false, true); console.log('screenshot_dark=' + JSON.stringify(shotDark)); }
  if (shotPhone) { await capture(shotPhone, 390, 2, true, false); console.log('screenshot_phone=' + JSON.stringify(shotPhone)); }
  rc = (s.state === 'done' || s.state === 'error') ? 0 : 1;
  if (rc) console.log('result=' + JSON.stringify('timeout'));
} catch (e) {
  console.log('result=' + JSON.stringify('driver error: ' + e.message));
  if (chromeErr) console.error(chromeErr);
}
finish(rc);
