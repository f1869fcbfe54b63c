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
//        [--screenshot-phone FILE] [--stop-after-tokens N] [ACTION]...
//   ACTION (run in order once the page is done, each waiting for its result):
//        --then-ask TEXT   types a follow-up question (TEXT URI-encoded) and presses Enter
//        --open-passage    focuses the first source's "Open passage" button,
//                          presses Enter, waits for the passage view
//        --wait-passage    waits for the passage view (opened by ?passage=ID)
//        --passage-next    clicks "Next passage" ("Previous" at the end), waits
//        --passage-close   presses Escape (the view closes, focus returns)
//        --copy            clicks "Copy answer" and reads the clipboard
//        --export          clicks "Export as Markdown" and reads the text
//        --new-conversation  clicks "New conversation"
//        --shot FILE       a screenshot now (1000 px wide)
//        --toggle-collection NAME  clicks that collection's box (NAME URI-encoded)
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
  if (!job) { job = { url: null, out: null, shot: null, shotDark: null, shotPhone: null, stopAfter: 0, actions: [] }; jobs.push(job); }
  if (a === '--out') job.out = args[++i];
  else if (a === '--then-ask') job.actions.push({ type: 'then-ask', arg: decodeURIComponent(args[++i]) });
  else if (a === '--shot') job.actions.push({ type: 'shot', arg: args[++i] });
  else if (a === '--toggle-collection') job.actions.push({ type: 'toggle-collection', arg: decodeURIComponent(args[++i]) });
  else if (['--open-passage', '--wait-passage', '--passage-next', '--passage-close', '--copy', '--export', '--new-conversation'].includes(a))
    job.actions.push({ type: a.slice(2) });
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
    source_marks: Array.from(document.querySelectorAll('#sources mark')).map((m) => m.textContent),
    source_texts: Array.from(document.querySelectorAll('#sources .src-text')).map((d) => d.textContent),
    open_buttons: document.querySelectorAll('#sources button.open-passage').length,
    turns: Number(document.body.getAttribute('data-turns') || 0),
    history_sent: Number(document.body.getAttribute('data-history-sent') || 0),
    questions: Array.from(document.querySelectorAll('.turn-q')).filter((p) => p.offsetParent !== null).map((p) => p.textContent),
    earlier_answers: Array.from(document.querySelectorAll('#turns .answer')).map((a) => a.textContent),
    earlier_cites: Array.from(document.querySelectorAll('#turns a.cite')).map((a) => a.getAttribute('href')),
    turn_shown: !q('#turn').hidden,
    injected_all: document.querySelectorAll('main script, main img, main iframe, main b, dialog script, dialog img, dialog b').length,
    overflow_x: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    passage_state: q('#passage').getAttribute('data-state'),
    passage_open: q('#passage').open,
    passage_title: q('#psg-title').textContent,
    passage_meta: q('#psg-meta').textContent,
    passage_text: q('#psg-text').textContent,
    passage_marks: Array.from(document.querySelectorAll('#psg-text mark')).map((m) => m.textContent),
    passage_status: q('#psg-status').textContent,
    passage_links: Array.from(document.querySelectorAll('#passage a[href]')).filter((a) => !a.hidden).map((a) => a.getAttribute('href')),
    passage_prev: !q('#psg-prev').disabled, passage_next: !q('#psg-next').disabled,
    focus: document.activeElement ? (document.activeElement.id || document.activeElement.className || document.activeElement.tagName) : '',
    export_open: q('#export-dlg').open,
    copied: q('#copied').textContent,
    collections: Array.from(document.querySelectorAll('#colls-list label')).map((l) => l.textContent),
    collections_checked: Array.from(document.querySelectorAll('#colls-list input:checked')).map((i) => i.value),
    collections_shown: q('#colls') ? !q('#colls').hidden : false,
  });
})()`;

// What the polling loop reads while a page streams (cheap: the page's own
// speed, and so the moment Stop is clicked, stays the page's).
const LIGHT = `JSON.stringify({ state: document.body.getAttribute('data-state'),
  tokens: Number(document.getElementById('answer').getAttribute('data-tokens')) })`;

const killer = setTimeout(() => { console.error('web_check: overall timeout'); finish(1); },
                          (timeoutS * (jobs.length + jobs.reduce((n, j) => n + j.actions.length, 0)) + 15) * 1000);

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
        r = await send('Runtime.evaluate', { expression: LIGHT, returnByValue: true }, sessionId);
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
    {
      const r = await send('Runtime.evaluate', { expression: SUMMARY, returnByValue: true }, sessionId);
      s = JSON.parse(r.result.value);
    }
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
    const evalv = async (expression, extra = {}) => {
      const r = await send('Runtime.evaluate', { expression, returnByValue: true, ...extra }, sessionId);
      if (r.exceptionDetails) throw new Error('in the page: ' + (r.exceptionDetails.exception?.description || r.exceptionDetails.text));
      return r.result.value;
    };
    const summary = async () => JSON.parse(await evalv(SUMMARY));
    // polls the summary until pred holds; returns it (or throws after the timeout)
    const until = async (what, pred) => {
      const end = Date.now() + timeoutS * 1000;
      for (;;) {
        const v = await summary();
        if (pred(v)) return v;
        if (Date.now() > end) throw new Error('timed out waiting for ' + what + ': ' + JSON.stringify(v).slice(0, 400));
        await sleep(100);
      }
    };
    const key = async (k, code, vk, text) => {
      await send('Input.dispatchKeyEvent', { type: 'keyDown', key: k, code, windowsVirtualKeyCode: vk, ...(text ? { text } : {}) }, sessionId);
      await send('Input.dispatchKeyEvent', { type: 'keyUp', key: k, code, windowsVirtualKeyCode: vk }, sessionId);
    };
    let step = 0;
    for (const act of final ? j.actions : []) {
      step++;
      const tag = `${step}_${act.type.replace(/-/g, '_')}`;
      if (act.type === 'then-ask') {
        await evalv(`(() => { const q = document.getElementById('q'); q.value = ${JSON.stringify(act.arg)}; q.focus(); return 1; })()`);
        await key('Enter', 'Enter', 13, '\r');
        const v = await until('the follow-up answer', (x) => (x.state === 'done' || x.state === 'error') &&
                              x.questions[x.questions.length - 1] === act.arg);
        out(tag, { state: v.state, status: v.status, answer: v.answer, turns: v.turns, history_sent: v.history_sent, error: v.error });
      } else if (act.type === 'open-passage') {
        await evalv(`(() => { const b = document.querySelector('#sources button.open-passage'); if (!b) throw new Error('no Open passage button'); b.focus(); return 1; })()`);
        await key('Enter', 'Enter', 13, '\r');
        const v = await until('the passage view', (x) => x.passage_state === 'loaded' || x.passage_state === 'error');
        out(tag, v.passage_state);
      } else if (act.type === 'wait-passage') {
        const v = await until('the passage view', (x) => x.passage_state === 'loaded' || x.passage_state === 'error');
        out(tag, v.passage_state);
      } else if (act.type === 'passage-next') {
        const before = (await summary()).passage_text;
        // Next, or Previous when the passage is its document's last
        out(tag + '_button', await evalv("(() => { const n = document.getElementById('psg-next'); const b = n.disabled ? document.getElementById('psg-prev') : n; b.click(); return b.id; })()"));
        const v = await until('the next passage', (x) => (x.passage_state === 'loaded' || x.passage_state === 'error') && x.passage_text !== before);
        out(tag, v.passage_state);
      } else if (act.type === 'passage-close') {
        await key('Escape', 'Escape', 27);
        const v = await until('the passage view to close', (x) => !x.passage_open);
        out(tag, v.focus);
      } else if (act.type === 'copy') {
        const origin = new URL(j.url).origin;
        await send('Browser.grantPermissions', { origin, permissions: ['clipboardReadWrite', 'clipboardSanitizedWrite'] });
        await send('Emulation.setFocusEmulationEnabled', { enabled: true }, sessionId);
        await evalv("document.getElementById('copy').click()", { userGesture: true });
        await until('the copy note', (x) => x.copied !== '');
        out(tag, await evalv('navigator.clipboard.readText()', { awaitPromise: true, userGesture: true }));
      } else if (act.type === 'export') {
        await evalv("document.getElementById('export').click()");
        await until('the export view', (x) => x.export_open);
        out(tag, await evalv("document.getElementById('export-text').value"));
        out(tag + '_download', await evalv("(() => { const a = document.getElementById('export-save'); return [a.getAttribute('download'), a.href.slice(0, 5)]; })()"));
        await evalv("document.getElementById('export-close').click()");
      } else if (act.type === 'new-conversation') {
        await evalv("document.getElementById('new-conv').click()");
        const v = await summary();
        out(tag, { turns: v.turns, turn_shown: v.turn_shown, questions: v.questions, focus: v.focus });
      } else if (act.type === 'toggle-collection') {
        out(tag, await evalv(`(() => { const i = Array.from(document.querySelectorAll('#colls-list input')).find((x) => x.value === ${JSON.stringify(act.arg)}); if (!i) return 'no such box'; i.click(); return i.checked; })()`));
      } else if (act.type === 'shot') {
        await capture(act.arg, 1000, 1, false, false);
        await send('Emulation.clearDeviceMetricsOverride', {}, sessionId);
        out(tag, act.arg);
      }
    }
    if (final && j.actions.length) {
      for (const [k, v] of Object.entries(await summary())) out('end_' + k, v);
      out('end_logs', logOf(sessionId));
    }
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
