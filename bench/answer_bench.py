"""Answer path with the local model: the chain (through the batch eval runner) vs raw llama-cpp-python.

The chain answers ~5 seed questions through the batch eval runner's per-case function
(``eval.runner.evaluate_case``: ask + metrics, so the same run gives the batch eval throughput); its
``stream`` is wrapped to timestamp every event, and the llama_cpp.Llama calls are timed (outermost
call only) to split time inside the LLM (generation and the claim judge) from time outside it.
Right after each question a raw ``Llama.create_completion`` on its own context runs the exact same
prompt (same order, so both contexts see the same KV-cache prefix reuse, and close in time, so both
see the same machine load) for the raw TTFT and tokens/s.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.timing import pct
from eval.cases import load_cases, resolve_sources
from eval.runner import evaluate_case
from rag.chain import Chain
from rag.ingest import ingest
from rag.model_file import ensure_model
from rag.models import Answer, Retrieved, Token
from rag.prompts import ANSWER_PROMPT, format_passages
from rag.providers import MiniLMEmbeddings, chatml, make_backend
from rag.providers.local import _shared_llama
from rag.settings import PROJECT_ROOT, Settings
from rag.store import Store

SEEDS = PROJECT_ROOT / "seeds"
WARMUP = "When did Kosovo declare independence?"


class LlamaTimer:
    """Adds up wall time spent inside llama_cpp.Llama (create_completion incl. its stream, eval,
    tokenize); nested calls count once."""

    NAMES = ("create_completion", "eval", "tokenize")

    def __init__(self) -> None:
        self.total, self.depth, self.calls = 0.0, 0, Counter[str]()
        self._orig: dict[str, Any] = {}

    def _enter(self) -> float:
        self.depth += 1
        return time.perf_counter()

    def _leave(self, t0: float) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.total += time.perf_counter() - t0

    def _stream(self, it: Iterator[Any]) -> Iterator[Any]:
        while True:
            t0 = self._enter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self._leave(t0)
            yield item

    def install(self) -> None:
        import llama_cpp

        timer = self
        for name in self.NAMES:
            fn = getattr(llama_cpp.Llama, name)
            self._orig[name] = fn

            def wrapper(obj: Any, *args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
                timer.calls[_name] += timer.depth == 0
                t0 = timer._enter()
                try:
                    out = _fn(obj, *args, **kwargs)
                finally:
                    timer._leave(t0)
                return timer._stream(out) if isinstance(out, Iterator) else out

            setattr(llama_cpp.Llama, name, wrapper)

    def uninstall(self) -> None:
        import llama_cpp

        for name, fn in self._orig.items():
            setattr(llama_cpp.Llama, name, fn)


def _gen_rate(times: list[float]) -> tuple[float | None, float | None]:
    """(tokens/s after the first token, seconds from first to last token)."""
    if len(times) < 3:
        return None, None
    span = times[-1] - times[0]
    return (len(times) - 1) / span if span > 0 else None, span


def _record_stream(chain: Chain, timer: LlamaTimer, records: list[dict[str, Any]]) -> None:
    original = chain.stream

    def stream(question: str, history: Any = ()) -> Iterator[Any]:
        rec: dict[str, Any] = {"question": question, "t0": time.perf_counter(), "tokens": [], "contexts": ()}
        llm_before = timer.total
        for event in original(question, history):
            now = time.perf_counter()
            if isinstance(event, Retrieved):
                rec["standalone"], rec["contexts"] = event.standalone_question, event.contexts
            elif isinstance(event, Token):
                rec["tokens"].append((now, event.text, timer.total))
            elif isinstance(event, Answer):
                rec["answer"] = event
            yield event
        rec["llm_s"] = timer.total - llm_before
        records.append(rec)

    chain.stream = stream  # type: ignore[method-assign]


def _raw_replay(settings: Settings, contexts: Any, question: str, llm: Any) -> dict[str, Any]:
    messages = ANSWER_PROMPT.format_messages(passages=format_passages(contexts), question=question)
    prompt = chatml(messages)
    n_prompt = len(llm.tokenize(prompt.encode("utf-8"), special=True))
    times, pieces = [], []
    t0 = time.perf_counter()
    for out in llm.create_completion(prompt, max_tokens=settings.max_answer_tokens, temperature=0.0, stream=True,
                                     stop=["<|im_end|>"]):
        times.append(time.perf_counter())
        pieces.append(out["choices"][0]["text"])
    rate, span = _gen_rate(times)
    return {"prompt_tokens": n_prompt, "ttft_s": times[0] - t0 if times else None, "tokens": len(times),
            "gen_tokens_per_s": rate, "gen_s": span, "text": "".join(pieces)}


def _question(rec: dict[str, Any], raw_out: dict[str, Any] | None, error: str | None, raw_first: bool,
              ) -> dict[str, Any]:
    ans: Answer = rec["answer"]
    tokens = rec["tokens"]
    times = [t for t, _, _ in tokens]
    rate, span = _gen_rate(times)
    # time inside llama.cpp between the first and the last token the chain yielded: the rest of that
    # span is the chain's own per-token work (LangChain streaming, parsing), independent of machine speed
    in_llama = tokens[-1][2] - tokens[0][2] if len(tokens) > 2 else None
    total = ans.timings.get("total_s", 0.0)
    return {
        "question": rec["question"], "abstained": ans.abstained, "answer": ans.answer[:200], "error": error,
        "raw_first": raw_first, "timings": {k: round(v, 3) for k, v in ans.timings.items()},
        "tokens": len(times), "gen_tokens_per_s": rate, "gen_s": span, "gen_in_llama_s": in_llama,
        "gen_llama_share": round(in_llama / span, 4) if in_llama is not None and span else None,
        "llm_s": round(rec["llm_s"], 3), "outside_llm_s": round(total - rec["llm_s"], 3),
        "raw": {k: v for k, v in (raw_out or {}).items() if k != "text"},
        "gen_ratio_vs_raw": round(rate / raw_out["gen_tokens_per_s"], 4)
        if rate and raw_out and raw_out.get("gen_tokens_per_s") else None,
        "same_text_as_raw": raw_out is not None and raw_out["text"] == "".join(t for _, t, _ in tokens),
    }


def seeds_settings(work: Path, emb: MiniLMEmbeddings) -> Settings:
    """Settings for a store of the seed articles (real MiniLM, local model), ingested once."""
    settings = Settings(data_dir=work / "seeds-store", llm="local", embeddings="minilm")
    if not (settings.data_dir / f"{settings.collection}.sqlite").is_file():
        store = Store(settings.data_dir, settings.collection)
        ingest([SEEDS], store, emb, chunk_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap_sentences,
               embed_model="minilm")
        store.close()
    return settings


def run_answer(work: Path, emb: MiniLMEmbeddings, n_questions: int = 5) -> dict[str, Any]:
    import llama_cpp

    settings = seeds_settings(work, emb)
    store = Store(settings.data_dir, settings.collection)
    raw = llama_cpp.Llama(model_path=str(ensure_model(settings.model_cache_dir)), n_ctx=settings.n_ctx,
                          n_threads=settings.n_threads, n_batch=256, verbose=False)
    cases = [c for c in load_cases(PROJECT_ROOT / "eval" / "cases.jsonl")
             if c.kind == "single" and c.answerable and not c.history][:n_questions]
    article_ids = [a.id for a in store.articles()]
    timer = LlamaTimer()
    timer.install()
    records: list[dict[str, Any]] = []
    per_q: list[dict[str, Any]] = []
    eval_s, correct = 0.0, 0
    try:
        t0 = time.perf_counter()
        chain = Chain(settings, store, make_backend(settings))
        _record_stream(chain, timer, records)
        chain.ask(WARMUP)  # loads the chat and judge contexts; fills the system-prompt KV cache
        warm_s = time.perf_counter() - t0
        if records[-1]["tokens"]:  # so the raw context holds the same prefix
            _raw_replay(settings, records[-1]["contexts"], records[-1]["standalone"], raw)
        # ours and raw on the same prompt, close in time; the order alternates (ABBA) so that a load
        # change between the two runs does not always favour the same side
        for i, case in enumerate(cases):
            raw_first = i % 2 == 1
            raw_out = None
            if raw_first:
                contexts = chain.retriever.search(case.question)  # the same passages the chain will use
                raw_out = _raw_replay(settings, contexts, case.question, raw) if contexts else None
            n_before, t0 = len(records), time.perf_counter()
            result = evaluate_case(chain, case, 0, resolve_sources(case, article_ids))
            eval_s += time.perf_counter() - t0
            correct += bool(result["metrics"].get("answer_correct"))
            if len(records) == n_before:  # the chain raised: nothing to compare
                per_q.append({"question": case.question, "error": result.get("error"), "failed": True})
                continue
            rec = records[-1]
            if raw_first and [c.chunk_id for c in contexts] != [c.chunk_id for c in rec["contexts"]]:
                raw_out = None  # retrieval differed (should not happen): no fair comparison
            if not raw_first and rec["tokens"]:
                raw_out = _raw_replay(settings, rec["contexts"], rec["standalone"], raw)
            per_q.append(_question(rec, raw_out if rec["tokens"] else None, result.get("error"), raw_first))
    finally:
        timer.uninstall()
    shared = _shared_llama(str(ensure_model(settings.model_cache_dir)), settings.n_ctx, settings.n_threads)
    switches = {"slot_switches": shared.switches,  # chat <-> judge on the one loaded model, warm-up included
                "slot_switch_ms_mean": round(1000 * shared.switch_s / shared.switches, 2) if shared.switches else None}
    del raw, chain, shared
    _shared_llama.cache_clear()  # free the chain's model (~1.9 GB) before the serve phase
    gc.collect()
    failed = [q for q in per_q if q.get("failed")]
    per_q = [q for q in per_q if not q.get("failed")]
    gen = [q for q in per_q if q["gen_tokens_per_s"] and q["raw"].get("gen_tokens_per_s")]
    ours_rate = sum(q["tokens"] - 1 for q in gen) / sum(q["gen_s"] for q in gen) if gen else None
    raw_rate = sum(q["raw"]["tokens"] - 1 for q in gen) / sum(q["raw"]["gen_s"] for q in gen) if gen else None
    pair_ratios = sorted(q["gen_ratio_vs_raw"] for q in gen if q["gen_ratio_vs_raw"])
    shares = [q for q in per_q if q.get("gen_llama_share") is not None]
    llama_share = sum(q["gen_in_llama_s"] for q in shares) / sum(q["gen_s"] for q in shares) if shares else None
    totals = sum(q["timings"].get("total_s", 0.0) for q in per_q)
    outside = sum(q["outside_llm_s"] for q in per_q)
    ttft = [q["timings"]["ttft_s"] for q in per_q if "ttft_s" in q["timings"]]
    raw_ttft = [q["raw"]["ttft_s"] for q in per_q if q["raw"].get("ttft_s") is not None]
    prompt_tokens = [q["raw"]["prompt_tokens"] for q in per_q if q["raw"]]
    return {
        "questions": len(per_q), "warmup_s": round(warm_s, 3),
        "ttft_p50_s": pct(ttft, 50), "raw_ttft_p50_s": pct(raw_ttft, 50),
        "ttft_ratio_vs_raw": round(pct(ttft, 50) / pct(raw_ttft, 50), 3) if ttft and raw_ttft else None,  # type: ignore[operator]
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_mean": round(statistics.fmean(prompt_tokens), 1) if prompt_tokens else None,
        "gen_tokens_per_s": round(ours_rate, 3) if ours_rate else None,
        "raw_gen_tokens_per_s": round(raw_rate, 3) if raw_rate else None,
        "llm_gen_ratio": round(ours_rate / raw_rate, 4) if ours_rate and raw_rate else None,
        "gen_ratio_per_question": pair_ratios,
        "gen_ratio_median": pct(pair_ratios, 50),
        "gen_llama_share": round(llama_share, 4) if llama_share else None,
        "total_p50_s": pct([q["timings"].get("total_s", 0.0) for q in per_q], 50),
        "overhead_fraction": round(outside / totals, 4) if totals else None,
        "outside_llm_s_per_question": round(outside / max(1, len(per_q)), 3),
        "step_means_s": {k: round(statistics.fmean(q["timings"].get(k, 0.0) for q in per_q), 3)
                         for k in ("rewrite_s", "retrieve_s", "ttft_s", "generate_s", "verify_s", "total_s")}
        if per_q else {},
        "eval_cases": len(cases), "eval_s": round(eval_s, 3),
        "eval_cases_per_min": round(60 * len(cases) / eval_s, 3) if eval_s else None,
        "eval_answer_correct": f"{correct}/{len(cases)}", "per_question": per_q, "failed": failed, **switches,
    }
