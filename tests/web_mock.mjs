// web_mock.mjs — a scripted stand-in for `mrag serve` that tests/test_app_web.sh
// points the page at, for what a random-weight model never produces: answers
// citing [n], http(s) and javascript: source URLs, PDF pages, CRLF and
// byte-split SSE, error events, cut streams, 503 with Retry-After. Serves
// app/web/index.html at / and answers POST /api/ask by the question text.
// Prints "port N" when listening on 127.0.0.1 (a free port); runs until killed.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

const page = readFileSync(process.argv[2] || 'app/web/index.html');
// The strict policy app_serve_page_csp() (app/serve_page.c) builds: the
// page's one script and one style element allowed by their sha256, no
// 'unsafe-inline' — so the page is checked to work under it.
const text = page.toString('utf8');
const block = (open, close) => {
  const a = text.indexOf(open) + open.length;
  return text.slice(a, text.indexOf(close, a));
};
const h = (s) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;
const CSP = `default-src 'none'; script-src ${h(block('<script>', '</script>'))}; ` +
  `style-src ${h(block('<style>', '</style>'))}; img-src data:; connect-src 'self'; ` +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// source 1's passage: markup and a javascript: URL as document text
const S1_TEXT = 'Approval\n\nYour manager approves leave <script>document.title="pwned"</script> within 3 days.\n' +
  '<img src=x onerror="document.title=\'pwned\'"> See [the form](javascript:document.title="pwned").';
const SOURCES = [
  { id: 1, chunk_id: 7, title: 'Vacation policy', uri: 'docs/handbook/a/very/long/path/that/keeps/going/and/going/' +
    'without/any/break/vacation-policy-for-all-employees-of-the-company-2027.md', url: null,
    label: 'vacation-policy.md:3-9', heading: 'Approval', lines: [3, 9], score: 0.8, text: S1_TEXT, trimmed: false },
  { id: 2, title: 'Wiki: Leave', uri: 'https://wiki.example.org/wiki/Leave', url: 'https://wiki.example.org/wiki/Leave',
    label: 'Leave', heading: null, score: 0.5 },
  { id: 3, title: 'Bad link', uri: 'javascript:document.title="pwned"', url: 'javascript:document.title="pwned"',
    label: 'bad', score: 0.2 },
  { id: 4, title: 'Handbook <img src=x onerror="document.title=\'pwned\'">', uri: '/docs/handbook.pdf', url: null, label: 'handbook.pdf p.4', page: 4, score: 0.1 },
];

const sse = (name, obj) => `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ask(q, history, colls, res) {
  if (q === 'busy') {
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '7' });
    res.end(JSON.stringify({ error: { message: 'all generation slots are busy', type: 'overloaded', code: 503 } }));
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
  if (q === 'cites') {
    const answer = 'Your manager approves leave [1]. See also [2, 3], the handbook [4] and [9].';
    res.write(sse('sources', { sources: SOURCES }));
    for (const w of answer.split(/(?<= )/)) { res.write(sse('token', { text: w })); await sleep(5); }
    res.end(sse('done', { status: 'answered', answer, sources: SOURCES, cited: [1, 2, 3, 4], events: [],
                          timings: { retrieve_ms: 3, prefill_ms: 10, decode_ms: 50, tokens: 14 } }));
  } else if (q === 'evidence') {
    // multi-byte text with byte-offset marks, markup as text, an https and a javascript: URL
    const t1 = 'Die Zuständigkeit für Urlaub <b>liegt</b> bei Frau Müller.';
    const b = (s) => Buffer.byteLength(s, 'utf8');
    const at = (s) => b(t1.slice(0, t1.indexOf(s)));
    const ev = [
      { text: t1, source: 1, citation: 'handbook/vacation-policy.md:4', uri: 'handbook/vacation-policy.md', url: null,
        lines: [4, 4], kind: 'sentence', score: 1.2,
        marks: [[at('Zuständigkeit'), at('Zuständigkeit') + b('Zuständigkeit')], [at('Müller'), at('Müller') + b('Müller')]] },
      { text: 'Your manager approves leave <script>document.title="pwned"</script> within 3 days.', source: 1,
        offset: Buffer.byteLength('Approval\n\n'), length: Buffer.byteLength('Your manager approves leave <script>document.title="pwned"</script> within 3 days.'),
        citation: 'handbook/vacation-policy.md:5', uri: 'handbook/vacation-policy.md', url: null, kind: 'sentence', score: 1.0,
        marks: [[5, 12]] },
      { text: 'Leave is booked in the wiki.', source: 2, citation: 'https://wiki.example.org/wiki/Leave#Booking',
        uri: 'https://wiki.example.org/wiki/Leave', url: 'https://wiki.example.org/wiki/Leave', kind: 'sentence', score: 0.9,
        marks: [[0, 5], [3, 40]] },
      { text: 'Bad link.', source: 3, citation: 'bad', uri: 'javascript:document.title="pwned"',
        url: 'javascript:document.title="pwned"', kind: 'sentence', score: 0.5, marks: [] },
    ];
    res.write(sse('sources', { sources: SOURCES }));
    res.write(sse('evidence', { evidence: ev, extractive: false }));
    await sleep(30);
    res.write(sse('token', { text: 'Frau Müller [1].' }));
    res.end(sse('done', { status: 'answered', answer: 'Frau Müller [1].', sources: SOURCES, evidence: ev, cited: [1],
                          events: [], timings: { retrieve_ms: 3, evidence_ms: 0.4, prefill_ms: 10, decode_ms: 5, tokens: 1 } }));
  } else if (q === 'collections?') {
    // echoes the collections the page named
    const answer = 'collections: ' + JSON.stringify(colls);
    const src = [{ ...SOURCES[0], collection: 'hr' }];
    res.write(sse('sources', { sources: src }));
    res.write(sse('token', { text: answer }));
    res.end(sse('done', { status: 'answered', answer, sources: src, cited: [], events: [] }));
  } else if (q.startsWith('history')) {
    // echoes the conversation the page sent
    const answer = `${history.length} earlier: ` + history.map((t) => `${t.question} => ${t.answer}`).join(' | ');
    res.write(sse('sources', { sources: SOURCES.slice(0, 1) }));
    res.write(sse('token', { text: answer }));
    res.end(sse('done', { status: 'answered', answer, sources: SOURCES.slice(0, 1), cited: [], events: [] }));
  } else if (q === 'err') {
    res.write(sse('sources', { sources: [] }));
    res.write(sse('token', { text: 'part' }));
    res.end(sse('error', { error: { message: 'request timed out', type: 'server_error', code: 504 } }));
  } else if (q === 'cut') {
    res.write(sse('sources', { sources: [] }));
    res.end(sse('token', { text: 'part' }));
  } else if (q === 'crlf') {
    // CRLF line ends, a comment, data split over two lines, one event sent byte by byte
    const src = [{ id: 1, title: 'T', uri: '/x.pdf', url: null, page: 4 }];
    res.write(': keep-alive\r\n\r\nevent: sources\r\ndata: {"sources":\r\ndata: ' + JSON.stringify(src) + '}\r\n\r\n');
    const bytes = Buffer.from('event: token\r\ndata: {"text":"Grüße [1]"}\r\n\r\n');
    for (let i = 0; i < bytes.length; i++) { res.write(bytes.subarray(i, i + 1)); await sleep(1); }
    res.end('event: done\r\ndata: ' + JSON.stringify({ status: 'answered', answer: 'Grüße [1]', sources: src,
                                                         cited: [1], events: [] }) + '\r\n\r\n');
  } else {
    res.end(sse('error', { error: { message: 'unknown mock question', type: 'invalid_request_error' } }));
  }
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && (req.url === '/' || req.url.startsWith('/?'))) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP });
    res.end(page);
  } else if (req.method === 'GET' && req.url === '/api/collections') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [
      { name: 'hr', object: 'collection', documents: 12, chunks: 40 },
      { name: 'it', object: 'collection', documents: 1, chunks: 3 },
      { name: '<b>x</b>', object: 'collection', documents: 0, chunks: 0 }] }));
  } else if (req.method === 'GET' && req.url.startsWith('/api/passage?')) {
    // passages 7 and 8 of one document (7 is source 1); anything else 404
    const id = new URL(req.url, 'http://x').searchParams.get('id');
    const doc = { title: 'Vacation policy <b>2027</b>', uri: SOURCES[0].uri, url: 'javascript:document.title="pwned"', type: 'md' };
    if (id === '7' || id === '8') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(id === '7'
        ? { id: 7, document: doc, ordinal: 0, heading: 'Approval', lines: [3, 9], cite: ':3-9', text: S1_TEXT, prev: null, next: 8 }
        : { id: 8, document: doc, ordinal: 1, heading: 'Carry-over', lines: [10, 12], cite: ':10-12',
            text: 'Carry-over\n\nUp to 5 days carry over to March.', prev: 7, next: null }));
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":{"message":"no such passage","type":"invalid_request_error","code":404}}');
    }
  } else if (req.method === 'POST' && req.url === '/api/ask') {
    let body = '';
    req.on('data', (d) => { body += d; if (body.length > 65536) req.destroy(); });
    req.on('end', () => {
      let q = '', hist = [], colls = null;
      try {
        const o = JSON.parse(body);
        q = o.question;
        hist = Array.isArray(o.history) ? o.history : [];
        colls = o.collections === undefined ? null : o.collections;
      } catch (e) { /* q stays empty */ }
      ask(q, hist, colls, res).catch(() => res.destroy());
    });
  } else {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
  }
});
server.listen(0, '127.0.0.1', () => console.log(`port ${server.address().port}`));
