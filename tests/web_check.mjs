// web_check.mjs — drives headless Chromium over the DevTools pipe for
// tests/test_app_web.sh: for each job opens a URL in a fresh tab, waits until
// mrag's page says it is done (body[data-state] = done | error), writes what
// the page shows as key=value lines (values JSON-encoded) and optionally
// saves screenshots. One browser serves all jobs (its start is the slow part).
// No packages: Node's child_process and Chromium's --remote-debugging-pipe
// (fd 3 = commands to the browser, fd 4 = replies; NUL-separated JSON).
//
// usage: node tests/web_check.mjs [--timeout SECONDS] JOB [-- JOB]...
//   JOB: URL [--out FILE] [--screenshot FILE] [--screenshot-dark FILE]
//        [--screenshot-phone FILE] [--stop-after-tokens N]
// --out: the job's lines go there (default stdout); dark: prefers-color-scheme
// dark; phone: 390 CSS px wide, touch, scale 2; --stop-after-tokens: clicks
// the Stop button once N tokens are shown. Each job ends with result="done"
// or result="timeout" / "driver error: ...".
// exit: 0 when every page reached a final state, 1 otherwise.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let timeoutS = 40;
const jobs = [];
let job = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--') { job = null; continue; }
  if (a === '--timeout') { timeoutS = Number(args[++i]); continue; }
  if (!job) { job = { url: null, out: null, shot: null, shotDark: null, shotPhone: null, stopAfter: 0 }; jobs.push(job); }
  if (a === '--out') job.out = args[++i];
  else if (a === '--screenshot') job.shot = args[++i];
  else if (a === '--screenshot-dark') job.shotDark = args[++i];
  else if (a === '--screenshot-phone') job.shotPhone = args[++i];
  else if (a === '--stop-after-tokens') job.stopAfter = Number(args[++i]);
  else job.url = a;
}
if (!jobs.length || jobs.some((j) => !j.url)) {
  console.error('usage: node tests/web_check.mjs [--timeout SECONDS] URL [--out FILE] [--screenshot FILE] ... [-- URL ...]');
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
const logs = new Map(); // sessionId -> console errors, exceptions, CSP reports
const logOf = (sid) => { if (!logs.has(sid)) logs.set(sid, []); return logs.get(sid); };

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
      logOf(msg.sessionId).push('exception: ' + ((d2.exception && d2.exception.description) || d2.text));
    } else if (msg.method === 'Runtime.consoleAPICalled' && msg.params.type === 'error') {
      logOf(msg.sessionId).push('console.error: ' + msg.params.args.map((a) => a.value ?? a.description).join(' '));
    } else if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error') {
      logOf(msg.sessionId).push(`log(${msg.params.entry.source}): ${msg.params.entry.text}`);
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
    injected: document.querySelectorAll('#answer *:not(a.cite), #sources img, #sources script, #sources iframe, #events *:not(li), ' +
                                        '#evidence *:not(li):not(q):not(mark):not(span.ev-cite):not(code):not(a)').length,
    evidence: Array.from(document.querySelectorAll('#evidence li')).map((li) => li.textContent),
    marks: Array.from(document.querySelectorAll('#evidence mark')).map((m) => m.textContent),
    evidence_links: Array.from(document.querySelectorAll('#evidence a:not(.cite)')).map((a) => a.getAttribute('href')),
    evidence_cites: document.querySelectorAll('#evidence a.cite').length,
    evidence_at_token: q('#evidence-box').getAttribute('data-at-token'),
    evidence_shown: !q('#evidence-box').hidden,
    answer_shown: getComputedStyle(q('#answer')).display !== 'none',
  });
})()`;

const killer = setTimeout(() => { console.error('web_check: overall timeout'); finish(1); },
                          (timeoutS * jobs.length + 15) * 1000);

function finish(code) {
  clearTimeout(killer);
  try { chrome.kill('SIGKILL'); } catch (e) { /* gone */ }
  try { rmSync(profile, { recursive: true, force: true }); } catch (e) { /* best effort */ }
  process.exit(code);
}

// Runs one job in a new tab; returns true when the page reached a final state.
async function runJob(j) {
  const lines = [];
  const out = (k, v) => lines.push(`${k}=${JSON.stringify(v)}`);
  let final = false, sessionId = null, targetId = null;
  try {
    ({ targetId } = await send('Target.createTarget', { url: 'about:blank' }));
    ({ sessionId } = await send('Target.attachToTarget', { targetId, flatten: true }));
    await send('Page.enable', {}, sessionId);
    await send('Runtime.enable', {}, sessionId);
    await send('Log.enable', {}, sessionId);
    await send('Page.navigate', { url: j.url }, sessionId);
    const deadline = Date.now() + timeoutS * 1000;
    let s = null, stopAfter = j.stopAfter;
    while (Date.now() < deadline) {
      await sleep(100);
      let r;
      try {
        r = await send('Runtime.evaluate', { expression: SUMMARY, returnByValue: true }, sessionId);
      } catch (e) { continue; }   // navigating: no context yet
      if (!r.result || typeof r.result.value !== 'string') continue;
      s = JSON.parse(r.result.value);
      if (s.state === 'done' || s.state === 'error') { final = true; break; }
      if (stopAfter > 0 && s.tokens >= stopAfter) {
        await send('Runtime.evaluate', { expression: "document.getElementById('stop').click()" }, sessionId);
        out('clicked_stop_at', s.tokens);
        stopAfter = 0;
      }
    }
    if (!s) throw new Error('the page never ran its script');
    for (const [k, v] of Object.entries(s)) out(k, v);
    out('logs', logOf(sessionId));
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
        out('phone_scroll_width', r.result.value);
      }
    };
    if (final && j.shot) { await capture(j.shot, 1000, 1, false, false); out('screenshot', j.shot); }
    if (final && j.shotDark) { await capture(j.shotDark, 1000, 1, false, true); out('screenshot_dark', j.shotDark); }
    if (final && j.shotPhone) { await capture(j.shotPhone, 390, 2, true, false); out('screenshot_phone', j.shotPhone); }
    out('result', final ? 'done' : 'timeout');
  } catch (e) {
    final = false;
    out('result', 'driver error: ' + e.message);
    if (chromeErr) lines.push(chromeErr.replace(/^/gm, '# '));
  }
  if (targetId) { try { await send('Target.closeTarget', { targetId }); } catch (e) { /* gone */ } }
  const text = lines.join('\n') + '\n';
  if (j.out) writeFileSync(j.out, text); else process.stdout.write(text);
  return final;
}

let rc = 0;
for (const j of jobs) if (!(await runJob(j))) rc = 1;
finish(rc);
