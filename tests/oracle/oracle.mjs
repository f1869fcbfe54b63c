#!/usr/bin/env node
// oracle.mjs — mrag's reference runner: llama.cpp (through node-llama-cpp 3.21.1,
// CPU build) answers tokenizer and model questions as JSON on stdout.
//
// usage: node tests/oracle/oracle.mjs MODE --model M.gguf [options]
//
// MODE is one of:
//   info        model facts (vocab size, special ids, n_embd, llama.cpp release)
//   tokenize    --text T | --batch FILE    ids of a text or of every text of a batch
//                 [--special]  parse control tokens written in the text ("[INST]", "</s>")
//                 [--bos]      prepend BOS (llama.cpp's add_special for SentencePiece)
//                 [--pieces]   also print the vocabulary piece of every id
//               FILE is a JSON array; each item is a string, or an object
//               {"text": "..."} or {"b64": "..."} (raw bytes), optionally with
//               "special": true/false overriding --special for that item. node hands
//               llama.cpp a JS string, so raw bytes are first decoded as UTF-8
//               (invalid sequences become U+FFFD); every result carries "sent_b64",
//               the exact bytes llama.cpp tokenized.
//               out: {"results": [{"ids": [...], "sent_b64": "..."}, ...]}
//   detokenize  --ids 1,2,3 | --batch FILE [--special]: FILE is a JSON array of id
//               arrays or of {"ids": [...], "special": bool} objects;
//               llama_detokenize(remove_special=false, unparse_special=--special);
//               out: {"results": [{"text": "...", "b64": "..."}]} (node turns invalid
//               UTF-8 into U+FFFD; b64 is that UTF-8)
//   eval        --text T | --ids 1,2,3 [--no-bos] [--special] [--top K] [--full P]
//               one batched prefill; for every position the log-softmax top-K
//               ([[id, logprob], ...], best first) of the next-token distribution;
//               --full P (comma list of positions, "last" or "all") adds the whole
//               log-softmax vector of those positions (full float precision: 9
//               significant digits, enough to round-trip the float32 probabilities).
//               out: {"tokens": [...], "positions": [{"pos", "argmax", "top"}],
//                     "full": {"P": [n_vocab logprobs]}}
//   greedy      --text T | --ids 1,2,3 [--no-bos] [--special] --n N [--top K]
//               greedy continuation (temperature 0) of N tokens after the prompt;
//               out: {"tokens", "ids", "text", "steps": [{"id", "top"}]}
//   hidden      --text T | --ids 1,2,3 [--special]
//               final-norm hidden state of every position and their mean. llama.cpp's
//               embedding for llama models is the LAST token's final-norm state, so
//               position i comes from one embedding call over the prefix 0..i (exact:
//               attention is causal). node-llama-cpp always puts BOS first here.
//               out: {"tokens", "n_embd", "states": [[...], ...], "mean": [...]}
//   bench       [--pp N] [--tg N] [--reps R]   prefill N random tokens, then decode
//               N single tokens; out: {"pp_tok_s", "tg_tok_s", "runs": [...]}
//
// common options: --threads N (default 2), --ctx N (default 512, grown to fit),
//   --lora FILE[:SCALE] (repeatable; eval, greedy, bench): a LoRA adapter applied to the context.
// tokenize/detokenize/info load the vocabulary only. Errors: a message on stderr,
// exit status 1.
import {getLlama, LlamaLogLevel, readGgufFileInfo} from "node-llama-cpp";
import fs from "node:fs";

const USAGE = "usage: node tests/oracle/oracle.mjs info|tokenize|detokenize|eval|greedy|hidden|bench --model M.gguf [options] (see the comment at the top of this file)";

function die(msg) {
    process.stderr.write("oracle: " + msg + "\n");
    process.exit(1);
}

function parseIds(s) {
    const ids = String(s).split(/[ ,]+/).filter(Boolean).map(Number);
    if (ids.some(x => !Number.isInteger(x) || x < 0)) die("bad id list: " + s);
    return ids;
}

function parseArgs(argv) {
    const a = {mode: argv[0], top: 10, threads: 2, ctx: 512, pp: 128, tg: 64, reps: 3, n: 16,
               bos: true, addBos: false, special: false, pieces: false, lora: []};
    if (!a.mode || a.mode.startsWith("-")) die(USAGE);
    for (let i = 1; i < argv.length; i++) {
        const k = argv[i];
        const v = () => {
            if (i + 1 >= argv.length) die("missing value after " + k);
            return argv[++i];
        };
        const num = () => {
            const x = Number(v());
            if (!Number.isFinite(x) || x < 0) die("bad number after " + k);
            return x;
        };
        switch (k) {
            case "--model": a.model = v(); break;
            case "--text": a.text = v(); break;
            case "--ids": a.ids = parseIds(v()); break;
            case "--batch": a.batch = v(); break;
            case "--special": a.special = true; break;
            case "--bos": a.addBos = true; break;
            case "--no-bos": a.bos = false; break;
            case "--pieces": a.pieces = true; break;
            case "--top": a.top = num(); break;
            case "--full": a.full = v(); break;
            case "--n": a.n = num(); break;
            case "--pp": a.pp = num(); break;
            case "--tg": a.tg = num(); break;
            case "--reps": a.reps = num(); break;
            case "--threads": a.threads = num(); break;
            case "--ctx": a.ctx = num(); break;
            case "--lora": {
                const x = v(), m = /^(.*):([-+0-9.eE]+)$/.exec(x);
                const filePath = m ? m[1] : x, scale = m ? Number(m[2]) : 1;
                if (!fs.existsSync(filePath) || !Number.isFinite(scale)) die("bad --lora " + x);
                a.lora.push({filePath, scale});
                break;
            }
            case "-h": case "--help": process.stdout.write(USAGE + "\n"); process.exit(0);
            default: die("unknown option " + k + "\n" + USAGE);
        }
    }
    if (!a.model) die("--model is required");
    if (!fs.existsSync(a.model)) die("no such model file: " + a.model);
    return a;
}

const args = parseArgs(process.argv.slice(2));
const vocabOnly = ["info", "tokenize", "detokenize"].includes(args.mode);
if (!["info", "tokenize", "detokenize", "eval", "greedy", "hidden", "bench"].includes(args.mode))
    die("unknown mode " + args.mode + "\n" + USAGE);

const logs = [];
const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, progressLogs: false,
    maxThreads: args.threads, logLevel: LlamaLogLevel.warn,
    logger: (level, message) => { logs.push(`[${level}] ${message}`); }
});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0, vocabOnly, useMmap: true});
const out = {oracle: "llama.cpp " + llama.llamaCppRelease?.release + " via node-llama-cpp 3.21.1 (CPU)", mode: args.mode};

// Full-precision but compact: 9 significant digits round-trip any float32.
const r9 = (x) => Number.isFinite(x) ? Number(x.toPrecision(9)) : null;
const b64 = (s) => Buffer.from(s, "utf8").toString("base64");

function readJson(path) {
    let v;
    try { v = JSON.parse(fs.readFileSync(path, "utf8")); } catch (e) { die("cannot read " + path + ": " + e.message); }
    if (!Array.isArray(v)) die(path + ": expected a JSON array");
    return v;
}

// A batch item as the JS string node-llama-cpp passes on (UTF-8 of it is what llama.cpp sees).
function itemText(it) {
    if (typeof it === "string") return it;
    if (it && typeof it.text === "string") return it.text;
    if (it && typeof it.b64 === "string") return new TextDecoder("utf-8", {fatal: false}).decode(Buffer.from(it.b64, "base64"));
    die("batch items must be strings, {\"text\": ...} or {\"b64\": ...}");
}

// The special-token flag of a batch item (the item's own, else --special).
const itemSpecial = (it) => (it && typeof it === "object" && typeof it.special === "boolean") ? it.special : args.special;

// Vocabulary pieces as stored in the file ("▁the", "<0x0A>"), read once on demand.
let vocabPieces = null;
async function loadPieces() {
    const info = await readGgufFileInfo(args.model, {readTensorInfo: false});
    vocabPieces = info.metadata?.tokenizer?.ggml?.tokens ?? [];
}
const piece = (id) => vocabPieces[id] ?? null;

function tokenizeText(text, special) {
    // node-llama-cpp calls common_tokenize(vocab, text, add_special=false, parse_special).
    const ids = Array.from(model.tokenize(text, special));
    if (args.addBos && model.tokens.bos != null) ids.unshift(model.tokens.bos);
    const r = {ids, sent_b64: b64(text)};
    if (args.pieces) r.pieces = ids.map(piece);
    return r;
}

// The prompt of eval/greedy/hidden as ids.
function promptTokens() {
    let toks;
    if (args.ids) toks = args.ids.slice();
    else if (args.text != null) {
        toks = Array.from(model.tokenize(args.text, args.special));
        if (args.bos && model.tokens.bos != null) toks.unshift(model.tokens.bos);
    } else die("give --text or --ids");
    if (toks.length === 0) die("empty prompt");
    return toks;
}

// Sorted [[id, logprob], ...] of one position from node-llama-cpp's probability map.
function topOf(probMap, k) {
    const res = [];
    for (const [id, p] of probMap) {
        if (res.length >= k) break;
        res.push([id, r9(Math.log(p))]);
    }
    return res;
}

function fullOf(probMap, nVocab) {
    const lp = new Array(nVocab).fill(null);
    for (const [id, p] of probMap) lp[id] = r9(Math.log(p));
    return lp;
}

const nVocabGuess = () => {
    // the vocabulary size is not exposed directly; the largest id with a piece is.
    let n = 0;
    for (const id of [model.tokens.bos, model.tokens.eos, model.tokens.nl]) if (id != null) n = Math.max(n, id + 1);
    return n;
};

async function newContext(size, batch) {
    const opts = {contextSize: size, batchSize: batch, threads: args.threads, sequences: 1, flashAttention: false};
    if (args.lora.length) opts.lora = {adapters: args.lora};
    return await model.createContext(opts);
}

const greedyOpts = {temperature: 0};
const wantNext = {generateNext: {token: true, probabilities: true, options: greedyOpts}};

switch (args.mode) {
case "info": {
    out.model = {
        vocabularyType: model.vocabularyType, bos: model.tokens.bos, eos: model.tokens.eos, nl: model.tokens.nl,
        bos_piece: model.tokens.bosString, eos_piece: model.tokens.eosString,
        shouldPrependBos: model.tokens.shouldPrependBosToken, shouldAppendEos: model.tokens.shouldAppendEosToken
    };
    break;
}
case "tokenize": {
    if (args.pieces) await loadPieces();
    if (args.batch) out.results = readJson(args.batch).map(it => tokenizeText(itemText(it), itemSpecial(it)));
    else if (args.text != null) out.results = [tokenizeText(args.text, args.special)];
    else die("give --text or --batch");
    break;
}
case "detokenize": {
    const lists = args.batch ? readJson(args.batch) : args.ids ? [args.ids] : die("give --ids or --batch");
    out.results = lists.map(it => {
        const ids = Array.isArray(it) ? it : it?.ids;
        if (!Array.isArray(ids)) die("detokenize batch items must be id arrays or {\"ids\": [...]}");
        const text = ids.length ? model.detokenize(ids, itemSpecial(it)) : "";
        return {text, b64: b64(text)};
    });
    break;
}
case "eval": {
    const toks = promptTokens();
    const ctx = await newContext(Math.max(args.ctx, toks.length + 8), Math.max(toks.length, 1));
    const seq = ctx.getSequence();
    const res = await seq.controlledEvaluate(toks.map(t => [t, wantNext]));
    let fullSet = new Set();
    if (args.full === "all") fullSet = new Set(toks.map((_, i) => i));
    else if (args.full === "last") fullSet.add(toks.length - 1);
    else if (args.full != null) for (const p of parseIds(args.full)) fullSet.add(p);
    out.tokens = toks;
    out.positions = [];
    out.full = {};
    res.forEach((r, i) => {
        const nx = r?.next;
        if (!nx?.probabilities) die("no probabilities for position " + i);
        out.positions.push({pos: i, argmax: nx.token, top: topOf(nx.probabilities, args.top)});
        if (fullSet.has(i)) out.full[i] = fullOf(nx.probabilities, Math.max(nx.probabilities.size, nVocabGuess()));
    });
    await ctx.dispose();
    break;
}
case "greedy": {
    const toks = promptTokens();
    const ctx = await newContext(Math.max(args.ctx, toks.length + args.n + 8), Math.max(toks.length, 1));
    const seq = ctx.getSequence();
    const items = toks.map((t, i) => i === toks.length - 1 ? [t, wantNext] : t);
    let r = await seq.controlledEvaluate(items);
    let nx = r[toks.length - 1].next;
    const ids = [], steps = [];
    while (ids.length < args.n) {
        ids.push(nx.token);
        steps.push({id: nx.token, top: topOf(nx.probabilities, args.top)});
        if (nx.token === model.tokens.eos || ids.length >= args.n) break;
        r = await seq.controlledEvaluate([[nx.token, wantNext]]);
        nx = r[0].next;
    }
    out.tokens = toks;
    out.ids = ids;
    out.text = model.detokenize(ids, false);
    out.steps = steps;
    await ctx.dispose();
    break;
}
case "hidden": {
    const toks = promptTokens();
    if (model.tokens.bos != null && toks[0] !== model.tokens.bos)
        die("hidden: node-llama-cpp always evaluates BOS first; the prompt must start with BOS");
    const size = Math.max(args.ctx, toks.length + 8);
    const ectx = await model.createEmbeddingContext({contextSize: size, batchSize: size, threads: args.threads});
    const states = [];
    for (let i = 1; i <= toks.length; i++) {
        const e = await ectx.getEmbeddingFor(toks.slice(0, i));
        states.push(Array.from(e.vector, r9));
    }
    const n = states[0].length;
    const mean = new Array(n).fill(0);
    for (const s of states) for (let j = 0; j < n; j++) mean[j] += s[j];
    out.tokens = toks;
    out.n_embd = n;
    out.states = states;
    out.mean = mean.map(x => r9(x / states.length));
    await ectx.dispose();
    break;
}
case "bench": {
    const ctx = await newContext(args.pp + args.tg + 8, Math.max(args.pp, 1));
    const seq = ctx.getSequence();
    const nv = Math.max(nVocabGuess(), 256);
    let rng = 12345;
    const rnd = () => { rng = (rng * 1103515245 + 12345) % 2147483648; return 3 + Math.floor(rng / 2147483648 * (nv - 3)); };
    const runs = [];
    for (let r = 0; r <= args.reps; r++) {     // run 0 warms up and is not counted
        await seq.clearHistory();
        const toks = [model.tokens.bos ?? 1];
        while (toks.length < args.pp) toks.push(rnd());
        const a0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(toks);
        const a1 = performance.now();
        for (let i = 0; i < args.tg; i++) await seq.evaluateWithoutGeneratingNewTokens([rnd()]);
        const a2 = performance.now();
        if (r > 0) runs.push({pp_ms: a1 - a0, tg_ms: a2 - a1});
    }
    const mean = (xs) => xs.reduce((s, x) => s + x, 0) / Math.max(xs.length, 1);
    out.threads = args.threads;
    out.pp = args.pp;
    out.tg = args.tg;
    out.runs = runs;
    out.pp_tok_s = args.pp / (mean(runs.map(x => x.pp_ms)) / 1000);
    out.tg_tok_s = args.tg / (mean(runs.map(x => x.tg_ms)) / 1000);
    out.note = "wall clock incl. JS overhead; decode runs after the prefill tokens";
    await ctx.dispose();
    break;
}
}

await model.dispose();
await llama.dispose();
// A vocab-only load always logs a failed resource estimate: only model runs report warnings.
const warnings = logs.filter(l => /^\[(warn|error|fatal)\]/.test(l));
if (warnings.length && !vocabOnly) out.warnings = warnings.slice(0, 20);
process.stdout.write(JSON.stringify(out) + "\n");
