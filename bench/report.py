"""results.json -> headline figures with targets, bench/RESULTS.md and one matplotlib plot."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.settings import PROJECT_ROOT

# figure -> (direction, target): ">=" higher is better, "<=" lower is better
TARGETS: dict[str, tuple[str, float]] = {
    "ingest_ratio": (">=", 0.85),
    "reingest_fraction": ("<=", 0.05),
    "retrieval_p50_ms_100k": ("<=", 50.0),
    "retrieval_ratio_vs_raw": ("<=", 2.0),  # vs the raw libraries on a text query (the headline)
    "retrieval_ratio_vs_raw_vector_query": ("<=", 2.0),  # vs a Chroma query given the vector (stricter)
    "llm_gen_ratio": (">=", 0.95),
    "overhead_fraction": ("<=", 0.10),
    "serve_peak_rss_mb": ("<=", 3000.0),
}
PACKAGES = ("chromadb", "sentence-transformers", "llama_cpp_python", "torch", "gradio", "gradio_client",
            "numpy", "langchain-core")


def environment() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    mem_mb = None
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    import torch

    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cores": os.cpu_count(),
            "memory_mb": mem_mb, "python": platform.python_version(), "versions": versions,
            "torch_threads": torch.get_num_threads(), "git_commit": commit}


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, flat, with their targets (missing phases give None)."""
    ing, ret = results.get("ingest") or {}, results.get("retrieval") or {}
    ans, srv = results.get("answer") or {}, results.get("serve") or {}
    figures: dict[str, Any] = {
        "ingest_ratio": ing.get("ingest_ratio"), "reingest_fraction": ing.get("reingest_fraction"),
        "ingest_articles_per_s": ing.get("pipeline_articles_per_s"),
        "ingest_chunks_per_s": ing.get("pipeline_chunks_per_s"), "raw_encode_texts_per_s": ing.get("raw_texts_per_s"),
    }
    sizes = sorted(int(s) for s in (ret.get("sizes") or {}))
    for size in sizes:
        r = ret["sizes"][str(size)]
        figures[f"retrieval_p50_ms_{size // 1000}k"] = r["ours"]["p50_ms"]
        figures[f"raw_vector_query_p50_ms_{size // 1000}k"] = r["raw_chroma_query"]["p50_ms"]
        figures[f"retrieval_ratio_vs_raw_vector_{size // 1000}k"] = r["ratio_vs_raw"]
        if r.get("raw_text_query"):
            figures[f"raw_text_query_p50_ms_{size // 1000}k"] = r["raw_text_query"]["p50_ms"]
            figures[f"retrieval_ratio_vs_raw_text_{size // 1000}k"] = r["ratio_vs_raw_text_query"]
    if sizes:
        last = ret["sizes"][str(sizes[-1])]
        # headline: ours / the raw libraries doing the same job from the same input, the question text
        # (MiniLM encode + Chroma query). The original baseline, a Chroma query handed the query
        # vector, leaves the embedding out of raw but not out of ours; it is kept beside it.
        figures["retrieval_ratio_vs_raw"] = last.get("ratio_vs_raw_text_query")
        figures["retrieval_ratio_vs_raw_vector_query"] = last["ratio_vs_raw"]
        figures["retrieval_ratio_size"] = sizes[-1]
    figures.update({
        "ttft_p50_s": ans.get("ttft_p50_s"), "raw_ttft_p50_s": ans.get("raw_ttft_p50_s"),
        "prompt_tokens_mean": ans.get("prompt_tokens_mean"), "gen_tokens_per_s": ans.get("gen_tokens_per_s"),
        "raw_gen_tokens_per_s": ans.get("raw_gen_tokens_per_s"), "llm_gen_ratio": ans.get("llm_gen_ratio"),
        "gen_ratio_median": ans.get("gen_ratio_median"), "gen_llama_share": ans.get("gen_llama_share"),
        "overhead_fraction": ans.get("overhead_fraction"), "eval_cases_per_min": ans.get("eval_cases_per_min"),
        "serve_peak_rss_mb": srv.get("serve_peak_rss_mb"),
        "raw_llama_rss_mb": ((srv.get("raw_llama_memory") or {}).get("one_llama") or {}).get("VmHWM"),
        "serve_rss_vs_one_raw_llama": srv.get("serve_rss_vs_one_raw_llama"),
    })
    targets = {}
    for name, (op, target) in TARGETS.items():
        value = figures.get(name)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        targets[name] = {"value": value, "target": f"{op} {target:g}", "met": met}
    if ans.get("gen_ratio_per_question"):
        r = ans["gen_ratio_per_question"]
        targets["llm_gen_ratio"]["note"] = (f"per question {r[0]:g} .. {r[-1]:g}, median {ans['gen_ratio_median']:g}; "
                                            f"llama.cpp's share of the chain's generation time "
                                            f"{ans.get('gen_llama_share')}")
    if sizes and sizes[-1] != 100_000:
        targets["retrieval_p50_ms_100k"]["note"] = f"not measured at 100k (largest size {sizes[-1]:,})"
    if sizes:
        targets["retrieval_ratio_vs_raw"]["note"] = ("headline: ours / raw MiniLM encode + Chroma query of the same "
                                                     "question text")
        targets["retrieval_ratio_vs_raw_vector_query"]["note"] = (
            "stricter: ours (with its query embedding) / a raw Chroma query handed the precomputed vector")
    return {"figures": figures, "targets": targets}


def plot(results: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 6))
    ing, ret, ans = results.get("ingest"), results.get("retrieval"), results.get("answer")
    ax = axes[0]
    if ing:
        parts = {k: v for k, v in ing["breakdown_s"].items() if v > 0}
        left = 0.0
        for name, sec in parts.items():
            ax.barh(["rag ingest"], [sec], left=left, label=name)
            left += sec
        raw_s = ing["chunks_embedded"] / ing["raw_texts_per_s"]
        ax.barh(["raw encode\n(same chunks)"], [raw_s], color="grey", label="raw SentenceTransformer.encode")
        ax.set_xlabel("seconds")
        ax.set_title(f"Ingest of {ing['articles']:,} articles ({ing['chunks_embedded']:,} chunks)\n"
                     f"ingest_ratio {ing['ingest_ratio']:.3f}")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    ax = axes[1]
    if ret and ret.get("sizes"):
        sizes = sorted(ret["sizes"], key=int)
        steps = ("embed_query", "vector_search", "keyword_search", "chunk_meta", "fusion+dedup")
        texts = [s for s in sizes if ret["sizes"][s].get("raw_text_query")]
        labels = ([f"ours {int(s) // 1000}k" for s in sizes] + [f"raw vector\n{int(s) // 1000}k" for s in sizes]
                  + [f"raw text\n{int(s) // 1000}k" for s in texts])
        pad = [0.0] * (len(sizes) + len(texts))
        bottom = [0.0] * len(labels)
        for step in steps:
            vals = [ret["sizes"][s]["split"][step]["p50_ms"] or 0.0 for s in sizes] + pad
            ax.bar(labels, vals, bottom=bottom, label=step)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        raw_vals = ([0.0] * len(sizes) + [ret["sizes"][s]["raw_chroma_query"]["p50_ms"] for s in sizes]
                    + [0.0] * len(texts))
        ax.bar(labels, raw_vals, color="grey", label="raw collection.query (vector given)")
        if texts:
            text_vals = [0.0] * 2 * len(sizes) + [ret["sizes"][s]["raw_text_query"]["p50_ms"] for s in texts]
            ax.bar(labels, text_vals, color="#bbb", label="raw MiniLM encode + collection.query")
        ax.axhline(50, color="red", linestyle="--", linewidth=1, label="target 50 ms")
        ax.set_ylabel("p50 ms (steps: p50 of each)")
        ax.set_title("Retrieval latency (synthetic corpus)\nRetriever.search vs raw (vector given / text query)")
        ax.legend(fontsize=7)
    ax = axes[2]
    if ans and ans.get("per_question"):
        qs = ans["per_question"]
        names = [f"q{i + 1}" for i in range(len(qs))]
        x = range(len(qs))
        w = 0.38
        t = [q["timings"] for q in qs]
        prompt = [max(0.0, x_.get("ttft_s", 0) - x_.get("retrieve_s", 0) - x_.get("rewrite_s", 0)) for x_ in t]
        gen = [max(0.0, x_.get("generate_s", 0) - p) for x_, p in zip(t, prompt, strict=True)]
        ours_parts = [("retrieve", [x_.get("retrieve_s", 0) for x_ in t]), ("to first token", prompt),
                      ("generate", gen), ("verify (judge)", [x_.get("verify_s", 0) for x_ in t])]
        bottom = [0.0] * len(qs)
        for name, vals in ours_parts:
            ax.bar([i - w / 2 for i in x], vals, w, bottom=bottom, label=f"ours: {name}")
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        raw_ttft = [q["raw"].get("ttft_s") or 0 for q in qs]
        raw_gen = [q["raw"].get("gen_s") or 0 for q in qs]
        ax.bar([i + w / 2 for i in x], raw_ttft, w, color="#999", label="raw: to first token")
        ax.bar([i + w / 2 for i in x], raw_gen, w, bottom=raw_ttft, color="#ccc", label="raw: generate")
        ax.set_xticks(list(x), names)
        ax.set_ylabel("seconds")
        ax.set_title(f"Answer path per question (left ours, right raw)\n"
                     f"llm_gen_ratio {ans.get('llm_gen_ratio')}, overhead_fraction {ans.get('overhead_fraction')}")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
