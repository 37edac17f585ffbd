"""``python -m bench.run``: the performance benchmark (issue 8). Writes bench/results.json,
bench/RESULTS.md and bench/bench.png. Default run: ~10-15 minutes on 2 cores; ``--quick`` is smaller.

Phases (``--skip`` any): ingest (5,000 generated articles, real MiniLM, vs raw encode; re-ingest),
retrieval (10k and 100k synthetic chunks, vs raw Chroma query), answer (local model vs raw
llama-cpp-python, through the eval runner's per-case work), serve (`rag serve` peak memory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.timing import loadavg

BENCH_DIR = Path(__file__).resolve().parent
PHASES = ("ingest", "retrieval", "answer", "serve")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--quick", action="store_true",
                   help="smaller run: 1,000 articles, 10k/30k chunks, 3 questions, 5 serve questions")
    p.add_argument("--articles", type=int, help="generated articles to ingest (default 5000; quick 1000)")
    p.add_argument("--sizes", help="synthetic retrieval corpus sizes, comma-separated (default 10000,100000)")
    p.add_argument("--questions", type=int, help="answer-path questions (default 5; quick 3)")
    p.add_argument("--serve-questions", type=int, help="questions asked through rag serve (default 10; quick 5)")
    p.add_argument("--rounds", type=int, default=2, help="passes over the retrieval questions per size")
    p.add_argument("--raw-every", type=int, default=4,
                   help="raw-encode check after every N-th ingest batch (0: none)")
    p.add_argument("--merge", action="store_true",
                   help="keep the phases of the existing results.json that this run skips (each phase keeps its "
                        "own date and load average)")
    p.add_argument("--skip", action="append", choices=PHASES, default=[], help="leave a phase out (repeatable)")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: rewrite RESULTS.md and the plot from the existing results.json")
    p.add_argument("--out", type=Path, default=BENCH_DIR, help="where results.json, RESULTS.md and the plot go")
    p.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary folder, removed)")
    args = p.parse_args(argv)
    q = args.quick
    args.articles = args.articles or (1000 if q else 5000)
    args.sizes = [int(s) for s in (args.sizes or ("10000,30000" if q else "10000,100000")).split(",") if s]
    args.questions = args.questions or (3 if q else 5)
    args.serve_questions = args.serve_questions or (5 if q else 10)
    return args


def write_outputs(results: dict[str, Any], out: Path) -> None:
    """results.json (with the headline), the plot and RESULTS.md."""
    from bench import analysis, markdown, report

    head = report.headline(results)
    results["headline"] = head
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    plot_name = None
    try:
        plot_name = report.plot(results, out / "bench.png").name  # type: ignore[union-attr]
    except Exception as exc:  # a plot failure must not lose the numbers
        print(f"bench: plot failed: {exc}", file=sys.stderr)
    text = markdown.render(results, head, plot_name, analysis.notes(results, head), analysis.other_findings(results))
    (out / "RESULTS.md").write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        write_outputs(json.loads((args.out / "results.json").read_text()), args.out)
        print(f"rewrote {args.out / 'RESULTS.md'} and the plot from {args.out / 'results.json'}")
        return 0
    from bench import report
    from bench.corpus import bench_questions, sentence_pool
    from rag.providers import get_embeddings
    from rag.settings import Settings

    started = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.run" + ("" if argv is None else " " + " ".join(argv))
    if argv is None:
        command = "python -m bench.run " + " ".join(sys.argv[1:])
    results: dict[str, Any] = {
        "environment": report.environment(),
        "run": {"command": command.strip(), "quick": args.quick, "articles": args.articles, "sizes": args.sizes,
                "questions": args.questions, "serve_questions": args.serve_questions, "load_start": loadavg(),
                "phases": {}, "wall_s": 0.0, "workdir": str(work)},
    }
    old_file = args.out / "results.json"
    if args.merge and old_file.is_file():
        old = json.loads(old_file.read_text())
        for name in PHASES:
            if name in args.skip and old.get(name):
                results[name] = old[name]
                results["run"]["phases"][name] = {"command": old["run"].get("command"), **old["run"]["phases"][name],
                                                  "from_earlier_run": True}
        results["run"]["merged_from"] = old["run"].get("command")
    print(f"bench: work folder {work}; load average {loadavg()}", file=sys.stderr)
    emb: Any = get_embeddings("minilm")
    pool = sentence_pool()
    settings = Settings(data_dir=work / "unused")

    def save() -> None:
        results["run"]["wall_s"] = round(time.perf_counter() - started, 1)
        results["run"]["load_end"] = loadavg()
        write_outputs(results, args.out)

    def phase(name: str, fn: Callable[[], Any]) -> None:
        if name in args.skip:
            return
        before, t0 = loadavg(), time.perf_counter()
        print(f"bench: {name} (load {before})…", file=sys.stderr, flush=True)
        results[name] = fn()
        wall = time.perf_counter() - t0
        results["run"]["phases"][name] = {"command": results["run"]["command"], "wall_s": round(wall, 1),
                                          "load_before": before, "load_after": loadavg(),
                                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        print(f"bench: {name} done in {wall:.0f} s", file=sys.stderr, flush=True)
        save()

    from bench.answer_bench import run_answer, seeds_settings
    from bench.ingest_bench import run_ingest
    from bench.retrieval_bench import run_retrieval
    from bench.serve_bench import run_serve

    try:
        phase("ingest", lambda: run_ingest(work, args.articles, pool, emb, settings, args.raw_every))
        phase("retrieval", lambda: run_retrieval(work, args.sizes, pool, emb, settings, bench_questions(),
                                                 args.rounds))
        phase("answer", lambda: run_answer(work, emb, args.questions))
        phase("serve", lambda: run_serve(work, seeds_settings(work, emb).data_dir, args.serve_questions))
    finally:
        save()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    head = results["headline"]
    print(json.dumps({"targets": head["targets"], "figures": head["figures"]}, indent=1))
    print(f"wrote {args.out / 'results.json'}, {args.out / 'RESULTS.md'} in {results['run']['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
