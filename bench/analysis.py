"""Why a target was missed, from the profile numbers of the same run, and what change in rag/ would fix it."""

from __future__ import annotations

from typing import Any


def _short(t: dict[str, Any]) -> str:
    op, target = t["target"].split()
    value, target_f = float(t["value"]), float(target)
    if op == ">=":
        return f"{value:g} vs target {t['target']}: {100 * (target_f - value) / target_f:.1f}% short"
    return f"{value:g} vs target {t['target']}: {value / target_f:.2f}x the limit"


def _ingest(ing: dict[str, Any]) -> list[str]:
    wall, bd = ing["first_ingest_s"], ing["breakdown_s"]
    rest = {k: v for k, v in bd.items() if k != "embed"}
    big = max(rest, key=lambda k: rest[k])
    return [
        f"  - Embedding is {100 * bd['embed'] / wall:.1f}% of the first ingest's {wall} s; the embed step alone ran "
        f"at {ing['embed_step_ratio']}x the raw encode rate. The non-embedding steps add "
        f"{100 * sum(rest.values()) / wall:.1f}% (largest: {big}, {rest[big]} s).",
        "  - The raw rate comes from raw encodes of the same batches interleaved with the pipeline; per checked "
        f"batch the raw/pipeline time ratio ranged {ing['raw_encode_interleaved']['batch_ratio_min']} .. "
        f"{ing['raw_encode_interleaved']['batch_ratio_max']}, which is this run's machine noise.",
        "  - Fix in rag/ (if the gap holds on a quiet machine): in `rag/ingest.py` embed the chunk texts of "
        "several article batches in one `embed_documents` call (e.g. ~512 texts), so SentenceTransformer sorts "
        "and pads over more texts and the last, partial batch of 64 is rarer; in `rag/providers/__init__.py` "
        "`MiniLMEmbeddings.embed_documents` could return `vecs.tolist()` instead of a per-vector "
        "`list(map(float, v))`.",
    ]


def _reingest(ing: dict[str, Any]) -> list[str]:
    bd = ing["reingest_breakdown_s"]
    return [f"  - The re-ingest took {ing['reingest_s']} s: load+clean {bd['load+clean']} s (every file is read and "
            f"cleaned again to compute its fingerprint), reconcile {bd['reconcile']} s (all vector ids read from "
            "Chroma), other " + f"{bd['other']} s.",
            "  - Fix in rag/: keep (path, size, mtime_ns) per source file in SQLite and skip reading/cleaning a "
            "file whose stat is unchanged; reconcile only after an interrupted ingest (a marker row), not "
            "before every run."]


def _retrieval(ret: dict[str, Any]) -> list[str]:
    size = max(ret["sizes"], key=int)
    r = ret["sizes"][size]
    sp = {k: v["p50_ms"] for k, v in r["split"].items()}
    text = (r.get("raw_text_query") or {}).get("p50_ms")
    out = [f"  - At {int(size):,} chunks, p50 {r['ours']['p50_ms']} ms = " + " + ".join(
        f"{k} {v}" for k, v in sp.items()) + f" ms (p50 of each step); raw vector query "
        f"{r['raw_chroma_query']['p50_ms']} ms, raw text query (encode + query) {text} ms. Without the query "
        f"embedding ours is {r['ours_without_query_embedding']['p50_ms']} ms "
        f"({r['ratio_vs_raw_without_query_embedding']}x the raw vector query)."]
    if sp.get("embed_query") and r["raw_chroma_query"]["p50_ms"]:
        out.append(f"  - Against the raw vector query the query embedding alone ({sp['embed_query']} ms) is "
                   f"{sp['embed_query'] / r['raw_chroma_query']['p50_ms']:.1f}x the whole baseline, so any pipeline "
                   "that embeds the question misses a 2.0 ratio against it; the like-for-like figure is the ratio "
                   "against the raw text query.")
    if sp.get("keyword_search", 0) > 10:
        out.append(f"  - `keyword_search` ({sp['keyword_search']} ms) is still the largest step after the embedding: "
                   "lower `KEYWORD_ROW_BUDGET` in rag/keywords.py (fewer chunks scored per query) if it matters.")
    if sp.get("chunk_meta", 0) > 3:
        out.append(f"  - `chunk_meta` ({sp['chunk_meta']} ms) fetches metadata and vectors of keyword-only hits from "
                   "Chroma; keeping the chunk metadata (and a float16 copy of the vector) in SQLite beside the FTS "
                   "row would remove that round trip.")
    return out


def _answer(ans: dict[str, Any], gen_missed: bool) -> list[str]:
    out = []
    if gen_missed:
        share = ans.get("gen_llama_share")
        out.append(f"  - Generation: {ans['gen_tokens_per_s']} tok/s through the chain vs "
                   f"{ans['raw_gen_tokens_per_s']} tok/s raw on the same prompts; per question the ratio ranged "
                   f"{ans['gen_ratio_per_question'][0]} .. {ans['gen_ratio_per_question'][-1]}, so the machine "
                   "load, not the code, sets it in this run.")
        if share:
            out.append(f"  - The load-independent measure: {100 * share:.1f}% of the chain's generation time (first "
                       f"to last token) is spent inside llama.cpp, {100 * (1 - share):.1f}% in the chain's own "
                       "per-token work (LangChain's callback manager, AIMessageChunk merging, StrOutputParser, the "
                       "chain's event loop). On the same machine state the chain would therefore generate at about "
                       f"{share:.3f}x the raw rate" + (", within the target." if share >= 0.95 else
                       "; fix in rag/providers/local.py + rag/chain.py: stream straight from `llama_cpp` in "
                       "`LocalChatModel` without the LangChain runnable pipeline for the answer."))
    out.append(f"  - Time outside the LLM: {ans['outside_llm_s_per_question']} s per question (mean steps: "
               + ", ".join(f"{k} {v}" for k, v in ans["step_means_s"].items())
               + "); verification's LLM calls (the judge) count as LLM time.")
    return out


def _serve(srv: dict[str, Any]) -> list[str]:
    raw = srv.get("raw_llama_memory") or {}
    one, shared = (raw.get("one_llama") or {}).get("VmHWM"), (raw.get("three_contexts_one_model") or {}).get("VmHWM")
    st = srv.get("status") or {}
    loads = srv.get("llama_loads") or []
    start = (srv.get("rss_after_start_mb") or {}).get("VmRSS")
    out = [f"  - At the end `rag serve` held RssAnon {st.get('RssAnon')} MB + RssFile {st.get('RssFile')} MB; "
           f"{start} MB after start-up, before any model. One raw `llama_cpp.Llama` (n_ctx 4096, after one answer) "
           f"peaks at {one} MB in a fresh process: the mmapped GGUF (~1,090 MB of file pages), a CPU_REPACK copy "
           "of most q4_K weights (~600 MB, anonymous), the KV cache (112 MB) and compute buffers (~150 MB)."]
    if len(loads) > 1:
        out.append(f"  - The server loaded the model {len(loads)} times (one `Llama` per slot): each load costs a "
                   "whole model (RSS counts the mmapped file once per mapping; the repacked copy is private to "
                   "each load). Fix in rag/providers/local.py: one loaded model for all slots.")
    else:
        out.append("  - The server loaded the model once (`rag/providers/local.py::SharedLlama`: the chat and judge "
                   "slots share one `Llama`, and each slot's KV state is saved and restored on a switch), so what is "
                   "left is that one model plus the app (MiniLM, torch, Chroma, Gradio).")
    if shared:
        out.append(f"  - For comparison, three llama.cpp contexts on one loaded model peak at {shared} MB (answers "
                   f"identical: {raw.get('same_answers')}); a smaller `n_ctx` (KV cache ~28 KB a token) and "
                   "`n_batch` (compute buffers) would trim the model's part further.")
    return out


def notes(results: dict[str, Any], head: dict[str, Any]) -> list[str]:
    """Markdown bullet lines for every missed target."""
    t = head["targets"]
    ing, ret, ans, srv = (results.get(k) for k in ("ingest", "retrieval", "answer", "serve"))
    out: list[str] = []
    if t["ingest_ratio"]["met"] is False and ing:
        out += [f"- **ingest_ratio** {_short(t['ingest_ratio'])}.", *_ingest(ing)]
    if t["reingest_fraction"]["met"] is False and ing:
        out += [f"- **reingest_fraction** {_short(t['reingest_fraction'])}.", *_reingest(ing)]
    missed_ret = [k for k in ("retrieval_p50_ms_100k", "retrieval_ratio_vs_raw", "retrieval_ratio_vs_raw_vector_query")
                  if k in t and t[k]["met"] is False]
    if missed_ret and ret:
        out += ["- " + "; ".join(f"**{k}** {_short(t[k])}" for k in missed_ret) + ".", *_retrieval(ret)]
    gen_missed = t["llm_gen_ratio"]["met"] is False
    if (gen_missed or t["overhead_fraction"]["met"] is False) and ans:
        out += ["- " + "; ".join(f"**{k}** {_short(t[k])}" for k in ("llm_gen_ratio", "overhead_fraction")
                                 if t[k]["met"] is False) + ".", *_answer(ans, gen_missed)]
    if t["serve_peak_rss_mb"]["met"] is False and srv:
        out += [f"- **serve_peak_rss_mb** {_short(t['serve_peak_rss_mb'])}.", *_serve(srv)]
    return out


def other_findings(results: dict[str, Any]) -> list[str]:
    """Findings beyond the targets, from the same run's numbers."""
    out: list[str] = []
    ret = results.get("retrieval") or {}
    fills = sorted(((int(k), v["write"]) for k, v in (ret.get("sizes") or {}).items()
                    if v["write"].get("split_s")), key=lambda kv: kv[0])
    rest = "sqlite and the rest of Store.write"
    if len(fills) >= 2:
        (s0, w0), (s1, w1) = fills[0], fills[-1]
        a, b = 1000 * w0["split_s"][rest] / w0["chunks"], 1000 * w1["split_s"][rest] / w1["chunks"]
        dels = [f"{v['fts_delete_by_article_ms']} ms at {int(k):,}" for k, v in sorted(
            ret["sizes"].items(), key=lambda kv: int(kv[0])) if v.get("fts_delete_by_article_ms") is not None]
        out.append(
            f"- **Writes as the store grows.** The SQLite part of `Store.write` cost {a:.2f} ms a chunk while the "
            f"store filled up to {s0:,} chunks and {b:.2f} ms a chunk from there to {s1:,} ({w1['split_s'][rest]} s "
            f"of {w1['seconds']} s). New articles skip the keyword-row delete; an *updated* article still runs "
            "`DELETE FROM chunks_fts WHERE article_id = ?`, and `article_id` is an UNINDEXED FTS5 column, so that "
            "delete scans the whole keyword table" + (f" ({', '.join(dels)} per article)" if dels else "")
            + ". Fix if updates at that scale matter: find the rows through an indexed table (a `chunks(chunk_id "
            "PRIMARY KEY, article_id)` table with an index on article_id, or an external-content FTS5 table "
            "keyed by rowid).")
    qt = ret.get("query_embedding_threads")
    if qt:
        d = qt["default_threads"]
        many, one = qt[f"threads_{d}"]["p50_ms"], qt["threads_1"]["p50_ms"]
        if many and one and many <= 2 * one:
            out.append(f"- Query embedding: {many} ms p50 with torch's {d} threads vs {one} ms with 1 thread in "
                       "this run. Under load (another process busy on the same 2 cores) two intra-op threads "
                       "wait on each other and a single query can take hundreds of ms; one thread for "
                       "`embed_query` costs nothing on a quiet machine and avoids that.")
    return out
