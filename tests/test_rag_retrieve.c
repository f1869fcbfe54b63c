/* test_rag_retrieve.c — rag/retrieve.c: hybrid is reciprocal rank fusion
 * (k = 60) of the dense and BM25 lists, BM25 works without a model, dense
 * needs one, an empty index answers nothing, bad arguments are refused. */
#include "tests/test.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char model_path[512];

static llm_model *load_test_model(void) {
    if (!model_path[0]) {
        snprintf(model_path, sizeof model_path, "%s/m.gguf", test_tmpdir());
        test_mkmodel(model_path, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128");
    }
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(model_path, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    return m;
}

static const char *docs[] = {
    "Lighthouses guide ships along the rocky coast at night.",
    "The harbour master keeps a log of every ship that enters the port.",
    "Bread rises when yeast ferments the sugar in the dough.",
    "A sourdough starter needs flour, water and patience.",
    "The coast guard patrols the harbour and rescues sailors.",
    "Ships carry containers of grain, coal and machines across the sea.",
    "Die Straße zum Hafen ist im Winter oft gesperrt.",
    "Apfelkuchen braucht Äpfel, Zucker, Mehl und Butter.",
    "Night trains cross the mountains while the passengers sleep.",
    "A port city grows around its docks, warehouses and ships.",
    "Yeast, flour and water are all a simple bread needs.",
    "Sailors read the stars when the lighthouse is dark.",
};

/* A store with the documents above, ingested with m. */
static idx_store *make_store(llm_model *m, bool fill) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/idx", test_tmpdir());
    idx_store *s = NULL;
    idx_params ip = idx_default_params();
    REQUIRE(idx_open(dir, &ip, &s) == IDX_OK, "%s", s ? idx_errmsg(s) : "?");
    if (!fill) return s;
    rag_ingest_params p = rag_ingest_default_params();
    p.model = m;
    p.n_threads = 1;
    rag_ingester *ing = NULL;
    char err[512];
    REQUIRE(rag_ingester_new(s, &p, &ing, err, sizeof err) == RAG_OK, "%s", err);
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char uri[64];
        snprintf(uri, sizeof uri, "test://doc/%zu", i);
        rag_doc *d = NULL;
        rag_extract_params xp = rag_extract_default_params();
        REQUIRE(rag_extract_memory(uri, docs[i], strlen(docs[i]), RAG_DOC_TXT, &xp, &d, err, sizeof err) == RAG_OK, "%s", err);
        int nc = 0;
        REQUIRE(rag_ingester_put(ing, uri, d, (int64_t)strlen(docs[i]), 0, "", &nc, err, sizeof err) == RAG_OK, "%s", err);
        CHECK_EQ_INT(nc, 1);
        rag_doc_free(d);
    }
    rag_ingester_free(ing);
    return s;
}

TEST(hybrid_is_reciprocal_rank_fusion_of_dense_and_bm25) {
    llm_model *m = load_test_model();
    idx_store *s = make_store(m, true);
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.n_threads = 1;
    rag_retriever *r = NULL;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    /* no weights learned yet: plain RRF, both lists weighted equally */
    rag_fusion fu = rag_retriever_fusion(r);
    CHECK(fu.w_dense == 0.5f && fu.w_bm25 == 0.5f && strcmp(fu.source, "default") == 0, "%f %f %s", fu.w_dense, fu.w_bm25, fu.source);
    const char *queries[] = {"ships in the harbour", "bread yeast flour", "Straße Hafen", "lighthouse night coast",
                             "zzzz unmatched words"};
    for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
        const char *q = queries[qi];
        const int k = 3, fetch = 4 * k;
        rag_hit dense[16], bm25[16], hyb[16];
        int nd = 0, nb = 0, nh = 0;
        REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_DENSE, fetch, NULL, dense, &nd) == RAG_OK);
        REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_BM25, fetch, NULL, bm25, &nb) == RAG_OK);
        REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_HYBRID, k, NULL, hyb, &nh) == RAG_OK);
        CHECK_EQ_INT(nd, 12);   /* every chunk has a vector */
        CHECK(nb <= 12);
        CHECK_EQ_INT(nh, k);
        for (int i = 1; i < nd; i++) CHECK(dense[i - 1].score >= dense[i].score, "dense order");
        for (int i = 1; i < nb; i++) CHECK(bm25[i - 1].score >= bm25[i].score, "bm25 order");
        /* expected fused scores, computed here from the two lists */
        double best_rest = -1;
        for (int i = 0; i < nh; i++) {
            double want = 0;
            int dr = 0, br = 0;
            for (int j = 0; j < nd; j++) if (dense[j].chunk_id == hyb[i].chunk_id) { want += fu.w_dense / (60 + j + 1); dr = j + 1; }
            for (int j = 0; j < nb; j++) if (bm25[j].chunk_id == hyb[i].chunk_id) { want += fu.w_bm25 / (60 + j + 1); br = j + 1; }
            CHECK(fabs(want - hyb[i].score) < 1e-6, "'%s' #%d: score %.7f, want %.7f", q, i + 1, (double)hyb[i].score, want);
            CHECK_EQ_INT(hyb[i].dense_rank, dr);
            CHECK_EQ_INT(hyb[i].bm25_rank, br);
            if (i) CHECK(hyb[i - 1].score >= hyb[i].score, "hybrid order");
        }
        /* nothing left out scores higher than the last one kept */
        for (int j = 0; j < nd; j++) {
            bool kept = false;
            for (int i = 0; i < nh; i++) kept |= hyb[i].chunk_id == dense[j].chunk_id;
            if (kept) continue;
            double sc = fu.w_dense / (60 + j + 1);
            for (int b = 0; b < nb; b++) if (bm25[b].chunk_id == dense[j].chunk_id) sc += fu.w_bm25 / (60 + b + 1);
            if (sc > best_rest) best_rest = sc;
        }
        CHECK(best_rest <= hyb[nh - 1].score + 1e-7, "'%s': a dropped chunk scores %.7f > %.7f", q, best_rest,
              (double)hyb[nh - 1].score);
    }
    /* bm25 proper: the harbour documents for "harbour" */
    rag_hit h[4];
    int n = 0;
    REQUIRE(rag_retrieve(r, "harbour", 7, RAG_SEARCH_BM25, 4, NULL, h, &n) == RAG_OK);
    CHECK_EQ_INT(n, 2);
    rag_retriever_free(r);
    idx_close(s);
    llm_model_free(m);
}

TEST(bm25_needs_no_model_dense_and_hybrid_do) {
    llm_model *m = load_test_model();
    idx_store *s = make_store(m, true);
    llm_model_free(m);
    rag_retriever_params rp = rag_retriever_default_params();
    rag_retriever *r = NULL;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    rag_hit h[5];
    int n = 0;
    REQUIRE(rag_retrieve(r, "sourdough starter", 17, RAG_SEARCH_BM25, 5, NULL, h, &n) == RAG_OK);
    REQUIRE(n >= 1);
    idx_chunk c;
    idx_doc d;
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    REQUIRE(idx_chunk_get(s, h[0].chunk_id, &c, &d) == IDX_OK);
    CHECK_EQ_STR(d.uri, "test://doc/3");
    idx_chunk_release(&c);
    idx_doc_release(&d);
    CHECK_EQ_INT(rag_retrieve(r, "x", 1, RAG_SEARCH_DENSE, 5, NULL, h, &n), RAG_ERR_ARG);
    CHECK(strstr(rag_retriever_errmsg(r), "bm25") != NULL, "%s", rag_retriever_errmsg(r));
    CHECK_EQ_INT(rag_retrieve(r, "x", 1, RAG_SEARCH_HYBRID, 5, NULL, h, &n), RAG_ERR_ARG);
    CHECK_EQ_INT(rag_retrieve(r, "x", 1, RAG_SEARCH_BM25, 0, NULL, h, &n), RAG_ERR_ARG);
    /* free text cannot break the FTS5 query */
    const char *nasty = "\"unbalanced AND ( NEAR* -\x01\xff";
    CHECK_EQ_INT(rag_retrieve(r, nasty, strlen(nasty), RAG_SEARCH_BM25, 5, NULL, h, &n), RAG_OK);
    rag_retriever_free(r);
    idx_close(s);
}

TEST(empty_index_answers_nothing_in_every_mode) {
    llm_model *m = load_test_model();
    idx_store *s = make_store(m, false);
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.n_threads = 1;
    rag_retriever *r = NULL;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    for (int mode = 0; mode < 3; mode++) {
        rag_hit h[5];
        int n = -1;
        CHECK_EQ_INT(rag_retrieve(r, "anything", 8, (rag_search_mode)mode, 5, NULL, h, &n), RAG_OK);
        CHECK_EQ_INT(n, 0);
    }
    rag_retriever_free(r);
    idx_close(s);
    llm_model_free(m);
}

TEST(mode_names_round_trip) {
    for (int mode = 0; mode < 3; mode++)
        CHECK_EQ_INT(rag_search_mode_parse(rag_search_mode_str((rag_search_mode)mode)), mode);
    CHECK_EQ_INT(rag_search_mode_parse("BM25"), -1);
    CHECK_EQ_INT(rag_search_mode_parse(""), -1);
    CHECK_EQ_INT(rag_search_mode_parse(NULL), -1);
}

TEST(retriever_embeds_at_the_layer_the_index_records) {
    llm_model *m = load_test_model();
    idx_store *s = make_store(m, false);
    rag_ingest_params p = rag_ingest_default_params();
    p.model = m;
    p.n_threads = 1;
    p.layer = 0;                /* after layer 0 instead of the final norm */
    rag_ingester *ing = NULL;
    char err[512];
    REQUIRE(rag_ingester_new(s, &p, &ing, err, sizeof err) == RAG_OK, "%s", err);
    rag_doc *d = NULL;
    rag_extract_params xp = rag_extract_default_params();
    REQUIRE(rag_extract_memory("t", docs[0], strlen(docs[0]), RAG_DOC_TXT, &xp, &d, err, sizeof err) == RAG_OK);
    int nc = 0;
    REQUIRE(rag_ingester_put(ing, "test://layer0", d, 1, 0, "", &nc, err, sizeof err) == RAG_OK, "%s", err);
    rag_doc_free(d);
    rag_ingester_free(ing);
    rag_retriever_params rp = rag_retriever_default_params();    /* layer -1 */
    rp.model = m;
    rp.n_threads = 1;
    rag_retriever *r = NULL;
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    rag_hit h[1];
    int n = 0;
    REQUIRE(rag_retrieve(r, docs[0], strlen(docs[0]), RAG_SEARCH_DENSE, 1, NULL, h, &n) == RAG_OK);
    REQUIRE(n == 1);
    CHECK(h[0].score > 0.9999f, "query embedded at another layer than the chunk: cosine %.5f", (double)h[0].score);
    rag_retriever_free(r);
    idx_close(s);
    llm_model_free(m);
}

/* Item 2 of issue 14: the weights are learned per index, and with the
 * random test model (whose dense side adds nothing to BM25) hybrid falls
 * back to BM25 by itself; stored weights are what hybrid uses. */
TEST(learned_weights_fall_back_to_bm25_with_a_random_model) {
    llm_model *m = load_test_model();
    idx_store *s = make_store(m, true);
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.n_threads = 1;
    rag_retriever *r = NULL;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    rag_fusion f;
    REQUIRE(rag_tune(r, s, NULL, &f, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(f.n_queries >= 10 && strcmp(f.source, "pseudo") == 0, "%d %s", f.n_queries, f.source);
    CHECK(f.w_dense == 0.0f && f.w_bm25 == 1.0f, "dense %.2f bm25 %.2f", f.w_dense, f.w_bm25);
    CHECK(f.mrr_hybrid >= f.mrr_bm25, "hybrid %.3f bm25 %.3f", f.mrr_hybrid, f.mrr_bm25);
    CHECK(isinf(f.gate_cos), "no dense trust, no gate by meaning: %f", f.gate_cos);
    rag_fusion back;
    REQUIRE(rag_fusion_load(s, &back) == RAG_OK);
    CHECK(back.w_dense == f.w_dense && back.n_queries == f.n_queries && isinf(back.gate_cos));
    rag_retriever_free(r);
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    const char *queries[] = {"ships in the harbour", "bread yeast flour", "lighthouse night coast"};
    for (size_t qi = 0; qi < sizeof queries / sizeof *queries; qi++) {
        rag_hit b[8], h[8];
        int nb = 0, nh = 0;
        const char *q = queries[qi];
        REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_BM25, 8, NULL, b, &nb) == RAG_OK);
        REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_HYBRID, 8, NULL, h, &nh) == RAG_OK);
        REQUIRE(nb >= 1);
        for (int i = 0; i < nb; i++) CHECK(h[i].chunk_id == b[i].chunk_id, "'%s' #%d: hybrid follows BM25", q, i + 1);
    }
    rag_retriever_free(r);
    /* other stored weights are used as stored */
    REQUIRE(idx_meta_set(s, "rag.fusion", "0.300 0.700 0.950000 40 0.5 0.6 0.7 labelled") == IDX_OK);
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    rag_fusion g = rag_retriever_fusion(r);
    CHECK(fabsf(g.w_dense - 0.3f) < 1e-6f && fabsf(g.gate_cos - 0.95f) < 1e-6f && strcmp(g.source, "labelled") == 0);
    rag_hit d[12], b[12], h[3];
    int nd = 0, nb = 0, nh = 0;
    const char *q = "ships in the harbour";
    REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_DENSE, 12, NULL, d, &nd) == RAG_OK);
    REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_BM25, 12, NULL, b, &nb) == RAG_OK);
    REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_HYBRID, 3, NULL, h, &nh) == RAG_OK && nh == 3);
    for (int i = 0; i < nh; i++) {
        double want = 0;
        for (int j = 0; j < nd; j++) if (d[j].chunk_id == h[i].chunk_id) want += 0.3 / (60 + j + 1);
        for (int j = 0; j < nb; j++) if (b[j].chunk_id == h[i].chunk_id) want += 0.7 / (60 + j + 1);
        CHECK(fabs(want - h[i].score) < 1e-6, "#%d: %.7f vs %.7f", i + 1, (double)h[i].score, want);
        CHECK(h[i].dense_rank == 0 || fabsf(h[i].dense_score - d[h[i].dense_rank - 1].score) < 1e-6f, "cosine reported");
    }
    /* a damaged value is refused, not half-read: the defaults stay */
    REQUIRE(idx_meta_set(s, "rag.fusion", "2.0 nonsense") == IDX_OK);
    CHECK_EQ_INT(rag_fusion_load(s, &back), RAG_ERR_FORMAT);
    CHECK(back.w_dense == 0.5f);
    rag_retriever_free(r);
    idx_close(s);
    llm_model_free(m);
}

/* Several indexes: each ranking kept, merged by rank (1 / (60 + rank in
 * its own index)), ties in index order; the same index twice interleaves
 * its own ranking, in every mode (the query embedded once serves both). */
TEST(several_indexes_merge_by_rank_in_index_order) {
    llm_model *m = load_test_model();
    idx_store *s = make_store(m, true);
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.n_threads = 1;
    rag_retriever *r1 = NULL, *r2 = NULL;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r1, err, sizeof err) == RAG_OK, "%s", err);
    REQUIRE(rag_retriever_new(s, &rp, &r2, err, sizeof err) == RAG_OK, "%s", err);
    rag_retriever *both[2] = {r1, r2};
    const char *q = "ships in the harbour";
    rag_search_mode modes[] = {RAG_SEARCH_BM25, RAG_SEARCH_DENSE, RAG_SEARCH_HYBRID};
    for (size_t mi = 0; mi < 3; mi++) {
        rag_hit one[6], merged[12], single[6];
        int n1 = 0, nm = 0, ns = 0;
        REQUIRE(rag_retrieve(r1, q, strlen(q), modes[mi], 6, NULL, one, &n1) == RAG_OK);
        REQUIRE(rag_retrieve_multi(both, 1, q, strlen(q), modes[mi], 6, NULL, single, &ns) == RAG_OK);
        CHECK_EQ_INT(ns, n1);
        for (int i = 0; i < ns && i < n1; i++)
            CHECK(single[i].chunk_id == one[i].chunk_id && single[i].score == one[i].score && single[i].part == 0,
                  "one index is rag_retrieve (#%d)", i + 1);
        REQUIRE(rag_retrieve_multi(both, 2, q, strlen(q), modes[mi], 12, NULL, merged, &nm) == RAG_OK);
        REQUIRE(n1 >= 3);
        for (int i = 0; i < nm; i++) {
            const rag_hit *h = &merged[i], *want = &one[i / 2];
            int part = i & 1;
            CHECK(h->part == part && h->chunk_id == want->chunk_id, "%s #%d: part %d chunk %lld, want part %d chunk %lld",
                  rag_search_mode_str(modes[mi]), i + 1, h->part, (long long)h->chunk_id, part, (long long)want->chunk_id);
            CHECK(fabsf(h->score - 1.0f / (float)(60 + i / 2 + 1)) < 1e-7f, "score %f", (double)h->score);
            CHECK(h->dense_rank == want->dense_rank && h->bm25_rank == want->bm25_rank, "ranks kept");
        }
        CHECK_EQ_INT(nm, 2 * n1);
        /* k cuts the merged list */
        REQUIRE(rag_retrieve_multi(both, 2, q, strlen(q), modes[mi], 3, NULL, merged, &nm) == RAG_OK);
        CHECK(nm == 3 && merged[0].part == 0 && merged[1].part == 1 && merged[2].part == 0);
    }
    rag_retriever_free(r1);
    rag_retriever_free(r2);
    idx_close(s);
    llm_model_free(m);
}

TEST_MAIN(RUN(several_indexes_merge_by_rank_in_index_order), RUN(hybrid_is_reciprocal_rank_fusion_of_dense_and_bm25), RUN(learned_weights_fall_back_to_bm25_with_a_random_model),
          RUN(bm25_needs_no_model_dense_and_hybrid_do),
          RUN(empty_index_answers_nothing_in_every_mode),
          RUN(retriever_embeds_at_the_layer_the_index_records),
          RUN(mode_names_round_trip))
