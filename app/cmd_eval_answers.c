/* cmd_eval_answers.c — `mrag eval-answers`: the whole query path of `mrag
 * ask` (guardrails, retrieval, relevance gate, evidence) over the
 * paragraphs of a SQuAD-format file; evidence hit@1 and hit@3 overall and
 * per question type, the latency of retrieval and evidence, and with
 * --generate the exact match and F1 of the model's answers. */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: mrag eval-answers --squad FILE [options]\n"
    "\n"
    "Ingests every paragraph of a SQuAD-format JSON file as a document (as\n"
    "eval-retrieval does, into the same kind of index) and asks each question\n"
    "through the path of `mrag ask` without the model: input guardrails,\n"
    "retrieval over all paragraphs, context guardrails, the relevance gate and\n"
    "the evidence. Reports evidence hit@1 and hit@3 (the first / one of the\n"
    "first three evidence units holds a gold answer string, case-insensitive),\n"
    "per question type (who, when, how many, how much, where, why, other), how\n"
    "often the gold paragraph was retrieved first, and the time retrieval and\n"
    "evidence took. Questions without gold answers are counted apart.\n"
    "\n"
    "  --squad FILE     the SQuAD/XQuAD JSON file (required)\n"
    "  --index DIR      index folder (default ./.mrag-eval)\n"
    "  -m FILE          the model that embeds the paragraphs (default $MRAG_MODEL)\n"
    "  -k N             passages retrieved per question (default 5, as ask)\n"
    "  --limit N        only the first N paragraphs (and their questions)\n"
    "  --threads N      engine threads (default: all cores)\n"
    "  --generate       also answer with the model (as `mrag ask`) and report\n"
    "                   exact match and F1 of its answers against the gold ones\n"
    "                   (slow: one generation per question; a random-weight test\n"
    "                   model is refused)\n"
    "  --max-tokens N   answer budget with --generate (default 64)\n"
    "  --misses N       print the first N questions whose evidence missed\n"
    "  --json           print the figures as JSON\n";

typedef struct {
    int n, hit1, hit3;
} tally;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    if (n <= 0) return 0;
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Does one of e[0..n) hold one of the gold answers? */
static bool holds(const rag_evidence *e, size_t n, const app_squad_q *q) {
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0; a < q->n_answers; a++)
            if (rag_qa_contains(e[i].text, e[i].text_len, q->answers[a])) return true;
    return false;
}

/* The answer without citations and the extractive label, for EM/F1. */
static void strip_citations(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 1 < cap; i++) {
        if (in[i] == '[') {
            size_t j = i + 1;
            while (in[j] && (isdigit((unsigned char)in[j]) || in[j] == ',' || in[j] == ' ')) j++;
            if (in[j] == ']' && j > i + 1) { i = j; continue; }
        }
        out[o++] = in[i];
    }
    out[o] = 0;
}

enum { A_SQUAD = 256, A_INDEX, A_JSON, A_GENERATE, A_LIMIT, A_THREADS, A_MAX_TOKENS, A_MISSES };
static const app_opt eval_answers_opts[] = {
    {"squad", 0, "FILE", A_SQUAD},
    {"index", 0, "DIR", A_INDEX},
    {"model", 'm', "FILE", 'm'},
    {NULL, 'k', "N", 'k'},
    {"limit", 0, "N", A_LIMIT},
    {"generate", 0, NULL, A_GENERATE},
    {"max-tokens", 0, "N", A_MAX_TOKENS},
    {"misses", 0, "N", A_MISSES},
    {"threads", 0, "N", A_THREADS},
    {"json", 0, NULL, A_JSON},
    {0},
};
const app_opt *const app_eval_answers_opts[] = {eval_answers_opts, NULL};

int app_cmd_eval_answers(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { fputs(usage, stdout); return 0; }
    const char *file = NULL, *index_flag = NULL, *mflag = NULL;
    long limit = 0;
    int k = 5, threads = 0, max_tokens = 64, misses = 0;
    bool json = false, gen = false;
    app_args oa;
    app_args_init(&oa, "eval-answers", app_eval_answers_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&oa, &v)) > 0) {
        bool ok = true;
        switch (id) {
        case A_SQUAD: file = v; break;
        case A_INDEX: index_flag = v; break;
        case 'm': mflag = v; break;
        case A_JSON: json = true; break;
        case A_GENERATE: gen = true; break;
        case A_LIMIT: ok = app_opt_long(&oa, v, 1, 10000000, &limit); break;
        case 'k': ok = app_opt_int(&oa, v, 1, 100, &k); break;
        case A_THREADS: ok = app_opt_int(&oa, v, 1, 256, &threads); break;
        case A_MAX_TOKENS: ok = app_opt_int(&oa, v, 1, 4096, &max_tokens); break;
        case A_MISSES: ok = app_opt_int(&oa, v, 0, 100000, &misses); break;
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if (oa.npos > 0) return app_usage_error(&oa, "unexpected argument '%s'", argv[1]);
    if (!file) return app_usage_error(&oa, "no --squad FILE");
    const char *mpath = app_model_path(mflag);
    if (!mpath) return app_error("eval-answers: no model to embed the paragraphs: give -m FILE or set MRAG_MODEL");

    int rc = 1;
    char err[1024];
    app_squad sq;
    llm_model *m = NULL;
    idx_store *s = NULL;
    rag_guard *guard = NULL;
    rag_answerer *ans = NULL;
    double *tr = NULL, *te = NULL;
    cJSON *out = NULL;
    if (app_squad_open(file, limit, "eval-answers", &sq) != 0) return 1;
    llm_model_params mp = llm_model_default_params();
    if (llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("eval-answers: %s", err); goto done; }
    llm_model_info mi;
    llm_model_get_info(m, &mi);
    if (gen && mi.random_weights) {
        app_error("eval-answers: --generate: %s is a random-weight test model; its answers mean nothing", mpath);
        goto done;
    }
    idx_params ip = idx_default_params();
    if (idx_open(index_flag ? index_flag : "./.mrag-eval", &ip, &s) != IDX_OK) {
        app_error("eval-answers: %s", s ? idx_errmsg(s) : "out of memory");
        goto done;
    }
    if (app_squad_ingest(&sq, s, m, -1, threads, json, "eval-answers") != 0) goto done;
    rag_guard_params gp = rag_guard_default_params();
    if (rag_guard_load(&gp, &guard, err, sizeof err) != RAG_OK) { app_error("eval-answers: guardrails: %s", err); goto done; }
    rag_answer_params ap = rag_answer_default_params();
    ap.store = s;
    ap.guard = guard;
    ap.model = m;
    ap.k = k;
    ap.n_threads = threads;
    ap.max_tokens = max_tokens;
    ap.extractive = !gen;
    ap.evidence_min_ratio = 0;      /* hit@3 looks at the first three of the ranking */
    idx_fingerprint fp;
    if (idx_fingerprint_get(s, &fp) == IDX_OK) ap.layer = fp.layer;
    if (rag_answerer_new(&ap, &ans, err, sizeof err) != RAG_OK) { app_error("eval-answers: %s", err); goto done; }

    tally all = {0}, per[RAG_QT_N];
    memset(per, 0, sizeof per);
    int unlabelled = 0, para1 = 0, no_evidence = 0, blocked = 0, shown = 0;
    double em_sum = 0, f1_sum = 0;
    if (!(tr = calloc((size_t)sq.n_q + 1, sizeof *tr)) || !(te = calloc((size_t)sq.n_q + 1, sizeof *te))) {
        app_error("eval-answers: out of memory");
        goto done;
    }
    bool tty = !json && isatty(STDERR_FILENO);
    for (int qi = 0; qi < sq.n_q; qi++) {
        const app_squad_q *q = &sq.qs[qi];
        if (!q->n_answers) { unlabelled++; continue; }
        rag_answer r;
        if (rag_answerer_ask(ans, q->question, NULL, 0, NULL, NULL, NULL, &r) != RAG_OK) {
            app_error("eval-answers: question %s: %s", q->id, rag_answerer_errmsg(ans));
            rag_answer_release(&r);
            goto done;
        }
        rag_qtype t = rag_question_type(q->question);
        bool h1 = r.n_evidence && holds(r.evidence, 1, q);
        bool h3 = holds(r.evidence, r.n_evidence < 3 ? r.n_evidence : 3, q);
        tr[all.n] = r.retrieve_ms;
        te[all.n] = r.evidence_ms;
        all.n++;
        all.hit1 += h1;
        all.hit3 += h3;
        per[t].n++;
        per[t].hit1 += h1;
        per[t].hit3 += h3;
        if (r.status == RAG_ANS_BLOCKED) blocked++;
        if (!r.n_evidence) no_evidence++;
        if (r.n_sources) {
            idx_chunk c;
            memset(&c, 0, sizeof c);
            if (idx_chunk_get(s, r.sources[0].chunk_id, &c, NULL) == IDX_OK && c.doc_id == sq.doc_ids[q->para]) para1++;
            idx_chunk_release(&c);
        }
        if (gen && r.answer) {
            static char clean[16384];
            strip_citations(r.answer, clean, sizeof clean);
            double em, f1;
            rag_qa_score(clean, q->answers, q->n_answers, &em, &f1);
            em_sum += em;
            f1_sum += f1;
        }
        if (!h1 && shown < misses) {
            shown++;
            printf("miss %s [%s] %s\n  gold: %s\n", q->id, rag_qtype_name(t), q->question, q->answers[0]);
            for (size_t i = 0; i < r.n_evidence; i++)
                printf("  %zu. (%.3f, %s) %s\n", i + 1, r.evidence[i].score, r.evidence[i].uri, r.evidence[i].text);
            if (!r.n_evidence) printf("  (no evidence: %s)\n", rag_answer_status_str(r.status));
        }
        rag_answer_release(&r);
        if (tty && (qi + 1) % 50 == 0) fprintf(stderr, "\r%d/%d questions", qi + 1, sq.n_q);
    }
    if (tty && sq.n_q >= 50) fputc('\n', stderr);
    int n = all.n ? all.n : 1;
    double mean_r = 0, mean_e = 0;
    for (int i = 0; i < all.n; i++) { mean_r += tr[i]; mean_e += te[i]; }
    mean_r /= n;
    mean_e /= n;
    qsort(tr, (size_t)all.n, sizeof *tr, cmp_double);
    qsort(te, (size_t)all.n, sizeof *te, cmp_double);
    idx_counts cnt;
    memset(&cnt, 0, sizeof cnt);
    idx_get_counts(s, &cnt);
    if (json) {
        if (!(out = cJSON_CreateObject())) { app_error("eval-answers: out of memory"); goto done; }
        cJSON_AddStringToObject(out, "file", file);
        cJSON_AddStringToObject(out, "model", mpath);
        cJSON_AddNumberToObject(out, "paragraphs", sq.n_para);
        cJSON_AddNumberToObject(out, "chunks", (double)cnt.chunks);
        cJSON_AddNumberToObject(out, "k", k);
        cJSON_AddNumberToObject(out, "questions", all.n);
        cJSON_AddNumberToObject(out, "unlabelled", unlabelled);
        cJSON_AddNumberToObject(out, "hit@1", (double)all.hit1 / n);
        cJSON_AddNumberToObject(out, "hit@3", (double)all.hit3 / n);
        cJSON_AddNumberToObject(out, "paragraph@1", (double)para1 / n);
        cJSON_AddNumberToObject(out, "no_evidence", no_evidence);
        cJSON_AddNumberToObject(out, "blocked", blocked);
        cJSON *pt = cJSON_AddObjectToObject(out, "per_type");
        for (int t = 0; pt && t < RAG_QT_N; t++) {
            if (!per[t].n) continue;
            cJSON *o = cJSON_AddObjectToObject(pt, rag_qtype_name((rag_qtype)t));
            cJSON_AddNumberToObject(o, "questions", per[t].n);
            cJSON_AddNumberToObject(o, "hit@1", (double)per[t].hit1 / per[t].n);
            cJSON_AddNumberToObject(o, "hit@3", (double)per[t].hit3 / per[t].n);
        }
        cJSON *lt = cJSON_AddObjectToObject(out, "latency_ms");
        if (lt) {
            cJSON_AddNumberToObject(lt, "retrieval_mean", mean_r);
            cJSON_AddNumberToObject(lt, "retrieval_p95", pct(tr, all.n, 0.95));
            cJSON_AddNumberToObject(lt, "evidence_mean", mean_e);
            cJSON_AddNumberToObject(lt, "evidence_p50", pct(te, all.n, 0.5));
            cJSON_AddNumberToObject(lt, "evidence_p95", pct(te, all.n, 0.95));
            cJSON_AddNumberToObject(lt, "evidence_max", all.n ? te[all.n - 1] : 0);
        }
        if (gen) {
            cJSON_AddNumberToObject(out, "exact_match", em_sum / n);
            cJSON_AddNumberToObject(out, "f1", f1_sum / n);
        }
        char *txt = cJSON_Print(out);
        if (!txt) { app_error("eval-answers: out of memory"); goto done; }
        puts(txt);
        free(txt);
    } else {
        printf("%s: %d paragraphs (%lld chunks), %d questions with answers (%d without, not counted); k %d\n", file,
               sq.n_para, (long long)cnt.chunks, all.n, unlabelled, k);
        printf("evidence hit@1 %.4f, hit@3 %.4f; gold paragraph retrieved first %.4f; no evidence %d, blocked %d\n",
               (double)all.hit1 / n, (double)all.hit3 / n, (double)para1 / n, no_evidence, blocked);
        printf("%-10s %9s %9s %9s\n", "type", "questions", "hit@1", "hit@3");
        for (int t = 0; t < RAG_QT_N; t++)
            if (per[t].n)
                printf("%-10s %9d %9.4f %9.4f\n", rag_qtype_name((rag_qtype)t), per[t].n, (double)per[t].hit1 / per[t].n,
                       (double)per[t].hit3 / per[t].n);
        printf("latency: retrieval mean %.2f ms (p95 %.2f); evidence mean %.2f ms (p50 %.2f, p95 %.2f, max %.2f)\n",
               mean_r, pct(tr, all.n, 0.95), mean_e, pct(te, all.n, 0.5), pct(te, all.n, 0.95),
               all.n ? te[all.n - 1] : 0.0);
        if (gen) printf("generated answers: exact match %.4f, F1 %.4f\n", em_sum / n, f1_sum / n);
    }
    rc = 0;
done:
    cJSON_Delete(out);
    free(tr);
    free(te);
    rag_answerer_free(ans);
    rag_guard_free(guard);
    idx_close(s);
    llm_model_free(m);
    app_squad_release(&sq);
    return rc;
}
