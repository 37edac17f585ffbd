"""bench/RESULTS.md from the results dict: headline table, one section per phase, and where time goes."""

from __future__ import annotations

from typing import Any


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.0f}"
    return str(v)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return out


def _met(t: dict[str, Any]) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[t["met"]]


def _ingest(ing: dict[str, Any], quick: bool) -> list[str]:
    wall, rw = ing["first_ingest_s"], ing["raw_encode_interleaved"]
    bd = ing["breakdown_s"]
    embed_share = bd["embed"] / wall if wall else 0.0
    lines = [
        "## Ingest", "",
        f"Corpus: {ing['articles']:,} generated `.txt` articles (sentences of `seeds/` and of the RGB passages in "
        "`../shared/bench/rgb_en/docs.jsonl` recombined; title, byline, dateline, one to three paragraphs, "
        "sometimes a copyright line), written to a temporary folder, never into the project. "
        f"{ing['chunks_embedded']:,} chunks, mean {ing['mean_chunk_chars']} characters "
        f"({ing['chars']:,} characters in all)." + (" `--quick` run: a subset of the 5,000." if quick else ""),
        "",
        "Pipeline: `rag.ingest.ingest` (load + clean + chunk + embed + Chroma upsert + SQLite/FTS5) with the real "
        "MiniLM into an on-disk Chroma and SQLite. Raw: `SentenceTransformer.encode(texts, batch_size=64, "
        "normalize_embeddings=True)`, interleaved with the pipeline because the machine's load drifts over "
        f"minutes: after every {rw['every_n_batches']}th batch that ingest wrote (64 articles), the bench encoded "
        f"that batch's very chunk texts again with the bare call ({rw['checks']} checks, {rw['texts']:,} texts, "
        f"{rw['seconds']} s; taken out of the pipeline's wall time). Per checked batch, raw time / pipeline "
        f"time (which includes chunking and the store writes) was {rw['batch_ratio_min']} .. "
        f"{rw['batch_ratio_median']} (median) .. {rw['batch_ratio_max']}.", "",
    ]
    lines += _table(["figure", "value"], [
        ["first ingest wall (s)", wall], ["pipeline chunks/s", ing["pipeline_chunks_per_s"]],
        ["pipeline articles/s", ing["pipeline_articles_per_s"]], ["raw encode texts/s", ing["raw_texts_per_s"]],
        ["**ingest_ratio** (pipeline chunks/s / raw texts/s)", ing["ingest_ratio"]],
        ["embed step alone, texts/s", ing["embed_step_texts_per_s"]],
        ["embed step / raw", ing["embed_step_ratio"]],
        ["re-ingest of the unchanged corpus (s)", ing["reingest_s"]],
        ["**reingest_fraction** (re-ingest / first ingest)", ing["reingest_fraction"]],
        ["re-ingest report", ", ".join(f"{k} {v}" for k, v in ing["reingest_report"].items())],
    ])
    lines += ["", "Where the first ingest's time goes (exclusive seconds; measured by wrapping the steps from the "
              "bench, rag/ unchanged):", ""]
    lines += _table(["step", "first ingest (s)", "share", "re-ingest (s)"],
                    [[k, v, f"{100 * v / wall:.1f}%" if wall else "n/a", ing["reingest_breakdown_s"].get(k)]
                     for k, v in bd.items()])
    ratio = ing["embed_step_ratio"] or 0.0
    why = ("i.e. on par with the raw call within this run's noise" if ratio >= 0.95 else
           "possible causes: the pipeline calls `encode` once per batch of 64 articles "
           f"({ing['embed_calls']} calls, {ing['texts_per_embed_call']} texts each on average), so it sorts by "
           "length and pads within that batch only and ends each call with a partial batch, and it converts each "
           "vector to a Python list of floats; the raw call sorts and pads a larger sample at once")
    lines += ["", f"Embedding is {100 * embed_share:.1f}% of the ingest; everything else (loading, cleaning, "
              f"chunking, Chroma, SQLite, bookkeeping) is {100 * (1 - embed_share):.1f}%. The embed step on its own "
              f"runs at {_f(ratio)}x the raw rate: {why}.", ""]
    timeline = ing.get("timeline") or []
    lines += [f"### {ing['articles']:,}-article ingest", "",
              f"**{ing['pipeline_articles_per_s']} articles/s** ({ing['pipeline_chunks_per_s']} chunks/s; "
              f"{ing['chunks_embedded'] / max(1, ing['articles']):.2f} chunks per article) with the real MiniLM, "
              f"{wall} s for all {ing['articles']:,}, with a tqdm progress bar on stderr"
              + (" (`--quick`: a subset; the default run ingests 5,000)" if quick else "") + ". Progress: "
              + ", ".join(f"{d:,} at {t:.0f} s" for t, d in timeline[:: max(1, len(timeline) // 6)]) + ".", ""]
    return lines


def _retrieval(ret: dict[str, Any]) -> list[str]:
    lines = ["## Retrieval", "",
             "Synthetic corpus: articles of 10 chunks, each chunk ~70 words drawn with the word frequencies of the "
             "seed/RGB sentences (so the FTS5 keyword index does realistic work), and **random unit 384-d vectors "
             "instead of MiniLM embeddings** (embedding 100k texts would take ~30-60 minutes here; a vector index "
             "does the same work for any unit vectors). Written through `Store.write`, so the Chroma collection, "
             "metadata and SQLite rows are what `rag ingest` makes. Queries: the project's eval questions and the "
             f"RGB questions ({ret['questions']} questions x {ret['rounds']} rounds); ours (`Retriever.search`, "
             f"top_k {ret['top_k']}, candidates {ret['candidates']}: query embedding + vector search + keyword "
             "search + fusion) and two raw baselines alternate query by query on the same collection object:", "",
             f"- **raw text query** (the headline's baseline): what a user of the raw libraries does with a "
             f"question, `SentenceTransformer.encode([question])` (on one torch thread, as rag encodes a single "
             f"query) then `collection.query(query_embeddings=[v], n_results={ret['candidates']}, include=[documents, "
             "metadatas, distances])`. Both sides start from the same input, the question text, so "
             "`retrieval_ratio_vs_raw` = ours / this.",
             "- **raw vector query** (the issue's original baseline, kept): the same `collection.query` handed the "
             "precomputed query vector. Ours includes the query embedding and this does not, so this ratio is the "
             "stricter one; with the embedding alone several times the query's time it cannot reach 2.0. It is "
             "reported as `retrieval_ratio_vs_raw_vector_query`, and ours without the query embedding against it "
             "too.", ""]
    rows = []
    for size, r in sorted(ret["sizes"].items(), key=lambda kv: int(kv[0])):
        sp, text = r["split"], r.get("raw_text_query") or {}
        rows.append([f"{int(size):,}", r["ours"]["p50_ms"], r["ours"]["p95_ms"], text.get("p50_ms"),
                     r.get("ratio_vs_raw_text_query"), r["raw_chroma_query"]["p50_ms"], r["ratio_vs_raw"],
                     r["ours_without_query_embedding"]["p50_ms"], r["ratio_vs_raw_without_query_embedding"],
                     sp["embed_query"]["p50_ms"], sp["vector_search"]["p50_ms"], sp["keyword_search"]["p50_ms"],
                     sp["chunk_meta"]["p50_ms"], sp["fusion+dedup"]["p50_ms"], r["write"]["chunks_per_s"],
                     r["first_search_s"]])
    lines += _table(["chunks", "ours p50 ms", "ours p95", "raw text query p50 ms", "**ratio vs raw text**",
                     "raw vector query p50 ms", "ratio vs raw vector", "ours w/o embed p50", "ratio w/o embed vs "
                     "raw vector", "embed_query p50", "vector_search p50", "keyword_search p50", "chunk_meta p50",
                     "fusion+dedup p50", "Store.write chunks/s", "first search s"], rows)
    for size, r in sorted(ret["sizes"].items(), key=lambda kv: int(kv[0])):
        extra = []
        if r.get("raw_collection_count"):
            extra.append(f"a bare `collection.count()` takes p50 {r['raw_collection_count']['p50_ms']} ms "
                         "(`Store.vector_search` no longer calls it)")
        km, kall = r.get("keyword_matches"), r.get("keyword_matches_all_words")
        if km and kall:
            extra.append("the FTS5 query of all a question's content words matches "
                         f"{100 * kall['median_fraction']:.1f}% of the chunks at the median "
                         f"({100 * kall['max_fraction']:.1f}% at most); the query keyword search now runs (its "
                         f"rarest words) matches {100 * km['median_fraction']:.2f}% "
                         f"({100 * km['max_fraction']:.2f}% at most)")
        if extra:
            lines += ["", f"At {int(size):,}: " + "; ".join(extra) + "."]
        w = r["write"]
        if w.get("split_s"):
            lines += ["", f"Writing the chunks up to {int(size):,} through `Store.write` ({w['chunks']:,} chunks, "
                      f"{w['seconds']} s): " + ", ".join(f"{k} {v} s" for k, v in w["split_s"].items()) + "."]
    qt = ret.get("query_embedding_threads")
    if qt:
        d = qt["default_threads"]
        lines += ["", f"Query embedding alone (`embed_query`, torch intra-op threads {d} vs 1, interleaved): "
                  f"p50 {qt[f'threads_{d}']['p50_ms']} ms vs {qt['threads_1']['p50_ms']} ms "
                  f"(p95 {qt[f'threads_{d}']['p95_ms']} vs {qt['threads_1']['p95_ms']})."]
    lines += ["", "`vector_search` is `Store.vector_search`: a SQLite `PRAGMA data_version` check and one "
              "`collection.query` that also returns the hits' metadata and embeddings; `keyword_search` picks the "
              "question's rarest words (document frequencies counted on the FTS5 index, each count capped) and "
              "runs FTS5 BM25 over them; `chunk_meta` is a Chroma `get` of metadata and embeddings for the keyword "
              "hits the vector search did not return (on this random-vector corpus that is nearly all of them); "
              "`fusion+dedup` is the rest of `Retriever.search` (RRF, cosines, near-copy check: cosine first, "
              "cached word shingles only for pairs that are alike).", ""]
    return lines


def _spread(ans: dict[str, Any]) -> str | None:
    r = ans.get("gen_ratio_per_question")
    return " / ".join(_f(x) for x in (r[0], ans["gen_ratio_median"], r[-1])) if r else None


def _answer(ans: dict[str, Any]) -> list[str]:
    lines = ["## Answer path (local model)", "",
             "Settings as shipped (`RAG_LLM=local`, `RAG_VERIFY=flag`, top_k 4) over the seed articles (real MiniLM). "
             f"One warm-up question first (model load: {ans['warmup_s']} s, not counted). Each question runs "
             "through `eval.runner.evaluate_case` (the batch runner's per-case work: `Chain.ask` + metrics); right "
             "before or after it (alternating, ABBA, so a load change between the two runs does not always favour "
             "the same side) a raw `llama_cpp.Llama.create_completion(prompt, temperature=0, stream=True)` on its "
             "own context (same n_ctx/threads/n_batch) runs the identical ChatML prompt; both contexts see the same "
             "sequence of prompts, so the same KV-cache prefix reuse. Time inside the LLM = time inside "
             "`llama_cpp.Llama` calls (answer generation and the claim judge's `eval`), outermost call only. "
             "Because two llama.cpp runs of 2 threads each on 2 shared cores slow each other by up to 20x when "
             "another process competes, the bench also measures a ratio that machine load cannot move: the share "
             "of the chain's own generation time (first to last token) spent inside llama.cpp; the rest is the "
             "chain's per-token work (LangChain streaming, output parsing).", ""]
    rows = []
    for i, q in enumerate(ans["per_question"], 1):
        t, raw = q["timings"], q["raw"]
        rows.append([f"q{i}: {q['question'][:60]}", "raw" if q.get("raw_first") else "ours", raw.get("prompt_tokens"),
                     t.get("ttft_s"), raw.get("ttft_s"), q["gen_tokens_per_s"], raw.get("gen_tokens_per_s"),
                     q.get("gen_ratio_vs_raw"), q.get("gen_llama_share"), q["tokens"], t.get("verify_s"),
                     t.get("total_s"), q["llm_s"], q["outside_llm_s"], q["same_text_as_raw"], q["abstained"]])
    lines += _table(["question", "first", "prompt tokens", "ttft s", "raw ttft s", "gen tok/s", "raw gen tok/s",
                     "gen ratio", "llama share of gen", "tokens", "verify s", "total s", "in LLM s", "outside LLM s",
                     "same text as raw", "abstained"], rows)
    lines += ["", *_table(["figure", "value"], [
        ["TTFT p50 (s), ours / raw", f"{_f(ans['ttft_p50_s'])} / {_f(ans['raw_ttft_p50_s'])}"],
        ["TTFT ratio ours / raw", ans["ttft_ratio_vs_raw"]],
        ["prompt tokens per question (mean)", ans["prompt_tokens_mean"]],
        ["generation tok/s, ours / raw (tokens after the first / their time, all questions)",
         f"{_f(ans['gen_tokens_per_s'])} / {_f(ans['raw_gen_tokens_per_s'])}"],
        ["**llm_gen_ratio** (ours tok/s / raw tok/s, all questions)", ans["llm_gen_ratio"]],
        ["per-question gen ratio: min / median / max", _spread(ans)],
        ["llama.cpp's share of the chain's generation time (load-independent)", ans.get("gen_llama_share")],
        ["**overhead_fraction** (time outside the LLM / total)", ans["overhead_fraction"]],
        ["time outside the LLM per question (s)", ans["outside_llm_s_per_question"]],
        ["mean step times (s)", ", ".join(f"{k} {v}" for k, v in ans["step_means_s"].items())],
        ["slot switches on the shared model (chat <-> judge, KV state saved and restored) / mean ms each",
         f"{_f(ans.get('slot_switches'))} / {_f(ans.get('slot_switch_ms_mean'))}"],
    ]), ""]
    rerun = ans.get("contended_rerun")
    if rerun:
        lines += [f"A re-run of this phase on {rerun['date']} ({rerun['code']}; load {rerun['load_before']} -> "
                  f"{rerun['load_after']}) is not the figures above because {rerun['why_not_the_headline']}: "
                  f"TTFT p50 {_f(rerun['ttft_p50_s'])} s (raw {_f(rerun['raw_ttft_p50_s'])} s), generation "
                  f"{_f(rerun['gen_tokens_per_s'])} tok/s (raw {_f(rerun['raw_gen_tokens_per_s'])}), llm_gen_ratio "
                  f"{_f(rerun['llm_gen_ratio'])}, llama.cpp's share of the chain's generation time "
                  f"{_f(rerun['gen_llama_share'])}, overhead_fraction {_f(rerun['overhead_fraction'])}. What it does "
                  f"show: the same answers as the run above ({rerun['same_answers_as_this_run']}; identical to raw "
                  f"llama.cpp on the same prompts {rerun['same_text_as_raw']}), and {rerun['slot_switches']} chat <-> "
                  f"judge switches on the shared model at {_f(rerun['slot_switch_ms_mean'])} ms each on average "
                  "(saving one slot's KV state and restoring the other's), against a first token of ~3 s.", ""]
    lines += ["## Batch eval throughput", "",
              f"**{_f(ans['eval_cases_per_min'])} cases per minute** with the local model: the {ans['eval_cases']} "
              f"answer-path questions above, timed around `eval.runner.evaluate_case` ({ans['eval_s']} s in all; "
              f"answers correct {ans['eval_answer_correct']}). This is the per-case work of `rag eval` "
              "(ask + verify + metrics); the one-off loading, ingest and report writing of a full `rag eval` "
              "run are not included. The in-process model answers one question at a time, so "
              "`--concurrency` does not raise it; with a server backend it does (docs/scaling.md).", ""]
    return lines


def _serve(srv: dict[str, Any]) -> list[str]:
    qs = srv.get("questions", [])
    lines = ["## `rag serve` memory", "",
             f"`rag serve` (local model, seeds store) in its own process; {len(qs)} questions asked through "
             f"`gradio_client` on `{srv['endpoint']}`, the conversation cleared between questions"
             + ("; the last one is a follow-up, so the rewrite step runs too" if any(q.get("follow_up") for q in qs)
                else " (no follow-up: the rewrite step does not run)")
             + (f"; llama.cpp model loads in the server log ({len(srv['llama_loads'])}): "
                + "; ".join(f"`{x}`" for x in srv["llama_loads"]) if srv.get("llama_loads") else "")
             + ". Start-up "
             f"{srv.get('startup_s')} s; VmRSS after start, before any question: "
             f"{(srv.get('rss_after_start_mb') or {}).get('VmRSS')} MB.", ""]
    lines += _table(["figure", "value"], [
        ["**serve_peak_rss_mb** (VmHWM)", srv.get("serve_peak_rss_mb")],
        ["status at the end (MB)", ", ".join(f"{k} {v}" for k, v in (srv.get("status") or {}).items())],
        ["question wall time p50 (s, through the UI queue)", srv.get("wall_p50_s")],
        ["raw baseline: one `llama_cpp.Llama` in a fresh process, VmHWM (MB)",
         ((srv.get("raw_llama_memory") or {}).get("one_llama") or {}).get("VmHWM")],
        ["serve peak / one raw Llama", srv.get("serve_rss_vs_one_raw_llama")],
        ["three llama.cpp contexts sharing one loaded model, VmHWM (MB)",
         ((srv.get("raw_llama_memory") or {}).get("three_contexts_one_model") or {}).get("VmHWM")],
        ["answers that were errors", srv.get("errors")],
    ])
    lines += ["", "VmHWM after each question (MB): " + ", ".join(_f(q.get("VmHWM")) for q in qs), ""]
    return lines


def render(results: dict[str, Any], head: dict[str, Any], plot_name: str | None, notes: list[str],
           findings: list[str] | None = None) -> str:
    env, run = results["environment"], results["run"]
    v = env["versions"]
    lines = [
        "# Benchmark results", "",
        f"Generated by `{run['command']}` on {env['date']} in {run['wall_s']:.0f} s "
        f"(git {env.get('git_commit')})."
        + (" Phases marked \"earlier run\" below come from earlier runs: "
           + "; ".join(f"{k} from `{p.get('command') or run['merged_from']}`" for k, p in run["phases"].items()
                       if p.get("from_earlier_run")) + "." if run.get("merged_from") else ""), "",
        f"Machine: {env['cpu']}, {env['cores']} cores, {env['memory_mb']} MB RAM; Python {env['python']}; "
        f"chromadb {v.get('chromadb')}, sentence-transformers {v.get('sentence-transformers')}, "
        f"llama-cpp-python {v.get('llama_cpp_python')}, torch {v.get('torch')} ({env['torch_threads']} intra-op "
        f"threads), gradio {v.get('gradio')}.", "",
        f"Load average (1/5/15 min) at start {run['load_start']}, at end {run['load_end']}; per phase: "
        + "; ".join(f"{k} {p['load_before']} -> {p['load_after']} ({p['wall_s']:.0f} s"
                    + (f", {p['date']}" if p.get("date") else "")
                    + (", earlier run" if p.get("from_earlier_run") else "") + ")"
                    for k, p in run["phases"].items()) + ".", "",
        "**Machine-noise caveat.** This machine is shared with other engineers' tests and real-LLM evaluation "
        "runs on the same 2 cores (the load averages above show how busy it was), so absolute times can move a "
        "lot between runs: with a load of 4-7, the same code measured 2-20x slower here and two llama.cpp runs a "
        "few seconds apart differed up to 20x. Each figure is therefore also a ratio against the raw library "
        "measured in the same run, as close in time as possible (interleaved where the step allows).", "",
    ]
    if plot_name:
        lines += [f"![ingest breakdown, retrieval latency split, answer path per question]({plot_name})", ""]
    lines += ["## Headline", ""]
    lines += _table(["figure", "value", "target", "result"],
                    [[k, t["value"], t["target"], _met(t) + (f" ({t['note']})" if t.get("note") else "")]
                     for k, t in head["targets"].items()])
    lines += ["", "Absolute numbers:", ""]
    lines += _table(["figure", "value"], [[k, val] for k, val in head["figures"].items()
                                          if k not in head["targets"]])
    lines.append("")
    if notes:
        lines += ["## Missed targets: why, and what would fix them", "", *notes, ""]
    if findings:
        lines += ["## Other findings", "", *findings, ""]
    if results.get("ingest"):
        lines += _ingest(results["ingest"], run.get("quick", False))
    if results.get("retrieval"):
        lines += _retrieval(results["retrieval"])
    if results.get("answer"):
        lines += _answer(results["answer"])
    if results.get("serve"):
        lines += _serve(results["serve"])
    return "\n".join(lines).rstrip() + "\n"
