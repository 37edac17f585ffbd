"""The ``rag`` command: thin wrappers that parse arguments, call the library and print."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rag.errors import RagError, validate_question
from rag.settings import COLLECTION_RULE, PROJECT_ROOT, get_settings, valid_collection

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from rag.models import Answer


def _default_seeds() -> Path:
    local = Path("seeds")
    return local if local.is_dir() else PROJECT_ROOT / "seeds"


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rag.ingest import ingest
    from rag.providers import get_embeddings
    from rag.store import Store

    settings = get_settings()
    store = Store(settings.data_dir, args.collection or settings.collection, settings.chroma_url)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, unit="article", desc="Embedding", file=sys.stderr)
        bar.update(done - bar.n)

    paths = [Path(p) for p in args.paths] or [_default_seeds()]
    try:
        report = ingest(paths, store, get_embeddings(settings.embeddings), chunk_tokens=settings.chunk_tokens,
                        overlap=settings.chunk_overlap_sentences, max_bytes=settings.max_file_bytes,
                        progress=progress, embed_model=settings.embeddings)
    finally:  # an error's line starts a line of its own
        if bar:
            bar.close()
    print(f"added {report.added} / updated {report.updated} / unchanged {report.unchanged} / "
          f"removed {report.removed}" + (f" / duplicates {report.duplicates}" if report.duplicates else "")
          + f" ({report.chunks_embedded} chunks embedded)")
    for line in report.rejected:
        print(f"error: {line}", file=sys.stderr)
    return 1 if report.rejected else 0


def cmd_remove(args: argparse.Namespace) -> int:
    from rag.ingest import remove
    from rag.store import Store, require_articles

    settings = get_settings()
    collection = args.collection or settings.collection
    if not settings.chroma_url:
        require_articles(settings.data_dir, collection)  # before opening makes an empty store
    removed, unknown = remove(args.paths, Store(settings.data_dir, collection, settings.chroma_url))
    print(f"removed {removed}")
    for path in unknown:
        print(f"error: {path}: no stored article came from this file or folder", file=sys.stderr)
    return 1 if unknown else 0


def format_answer(answer: Answer) -> str:
    lines = [answer.answer, ""]
    for c in answer.citations:
        source = ", ".join(x for x in (c.outlet, c.date, c.title) if x) or c.article_id
        also = f" (also reported by {', '.join(c.also_reported_by)})" if c.also_reported_by else ""
        lines.append(f"[{c.n}] {source} [{c.article_id}]{also}")
        lines += [f"    \"{quote}\"" for quote in c.quotes]
    for claim in answer.claims:
        if claim.verdict != "supported":
            lines.append(f"! not supported by its source: \"{claim.text}\" ({claim.reason})")
    return "\n".join(lines).rstrip()


def cmd_ask(args: argparse.Namespace) -> int:
    settings = get_settings()
    validate_question(args.question, settings.max_question_chars)  # fail before importing the chain
    collection = args.collection or settings.collection
    from rag.chain import Chain
    from rag.store import require_articles

    require_articles(settings.data_dir, collection)  # before a store or a model is made
    answer = Chain.from_settings(settings, collection).ask(args.question)
    # JSON stays valid where the terminal cannot show every letter (PYTHONIOENCODING=ascii, a Latin-1 locale)
    ascii_only = (sys.stdout.encoding or "").lower().replace("-", "").replace("_", "") != "utf8"
    print(json.dumps(answer.to_json(), ensure_ascii=ascii_only, indent=2) if args.json else format_answer(answer))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.launch import serve

    return serve(host=args.host, port=args.port, insecure=args.insecure, collection=args.collection)


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.runner import main as eval_main

    return eval_main(args)


def cmd_eval_judge(args: argparse.Namespace) -> int:
    from eval.judge import main as judge_main

    return judge_main(args)


class _Parser(argparse.ArgumentParser):
    """Bad arguments end in one ``error:`` line (exit 2), like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """Help written to a full disk or a closed pipe is an error, as the answer is (argparse drops every
        write error: `rag --help > /dev/full` said nothing and exited 0). An error line that stderr cannot
        take is dropped: the exit code still tells."""
        if not message:
            return
        out = file or sys.stderr
        try:
            out.write(message)
            if (flush := getattr(out, "flush", None)) is not None:
                flush()
        except OSError:
            if out is sys.stdout:
                raise


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 1 to 65535, got {port}")
    return port


def _collection(text: str) -> str:
    if not valid_collection(text):
        raise argparse.ArgumentTypeError(f"collection name {text!r} {COLLECTION_RULE}")
    return text


def _path(text: str) -> Path:
    if not text.strip():  # Path("") is the current folder
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rag", description="Question answering over news articles, with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add/update/remove articles from files or folders (default: seeds/)")
    p.add_argument("paths", nargs="*", type=_path)
    p.add_argument("--collection", type=_collection, help="store into this collection instead of the default")
    p.set_defaults(func=cmd_ingest, parser=p)

    p = sub.add_parser("remove", help="remove the stored articles of files or folders (which may be gone)")
    p.add_argument("paths", nargs="+", type=_path, metavar="PATH")
    p.add_argument("--collection", type=_collection, help="remove from this collection instead of the default")
    p.set_defaults(func=cmd_remove, parser=p)

    p = sub.add_parser("ask", help="answer one question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--collection", type=_collection)
    p.set_defaults(func=cmd_ask, parser=p)

    p = sub.add_parser("serve", help="start the chat UI")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=7860, help="1-65535 (default 7860)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback host without RAG_UI_AUTH")
    p.add_argument("--collection", type=_collection, help="chat over this collection instead of the default"
                   " (its uploads are kept in RAG_DATA_DIR/uploads-NAME)")
    p.set_defaults(func=cmd_serve, parser=p)

    p = sub.add_parser("eval", help="batch evaluation over a case file")
    p.add_argument("--cases", type=_path, default=PROJECT_ROOT / "eval" / "cases.jsonl", metavar="FILE",
                   help="the cases, one JSON object a line (default: the project's eval/cases.jsonl)")
    p.add_argument("--out", type=_path, required=True, metavar="DIR",
                   help="folder for results.jsonl, summary.json and the reports (created; resumed if it has results)")
    p.add_argument("--limit", type=int, metavar="N", help="run only the first N cases (of the --kind chosen)")
    p.add_argument("--kind", action="append", help="run only the cases of this kind (give it again for more kinds)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="ask every case N times; summary.json gives each metric's min/max across runs (default 1)")
    p.add_argument("--baseline", type=_path, metavar="PATH",
                   help="compare with an earlier run: its summary.json, or its --out folder")
    p.add_argument("--corpus", type=_path, metavar="PATH", help="answer from this folder or .jsonl (own collection)")
    p.add_argument("--concurrency", type=int, default=1, metavar="N",
                   help="ask N cases at a time (default 1); helps server backends, not the in-process model")
    p.set_defaults(func=cmd_eval, parser=p)

    p = sub.add_parser("eval-judge", help="score the claim judge on labelled pairs")
    p.add_argument("--cases", type=_path, default=PROJECT_ROOT / "eval" / "judge_cases.jsonl", metavar="FILE",
                   help="labelled (claim, passage) pairs, one JSON object a line (default: eval/judge_cases.jsonl)")
    p.add_argument("--out", type=_path, metavar="DIR", help="also write DIR/judge.json (DIR is created)")
    p.set_defaults(func=cmd_eval_judge, parser=p)
    return parser


def _standard_streams() -> None:
    """Streams the shell closed (`rag ask … >&-`, `2>&-`) are /dev/null. Python gives None for them: printing
    the answer raised AttributeError, and an error line went to stdout (into the `--json` output). Their
    numbers are taken too, so no file opened later gets number 1 or 2, where a library's own output would
    land in it. A letter the terminal cannot show is written as \\u20ac, not a crash."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:  # closed: the lowest free number, so this one, is /dev/null from here on
            os.set_inheritable(os.open(os.devnull, os.O_RDWR), True)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the whole run
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the whole run
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _say(line: str) -> None:
    """``line`` on stderr; dropped when stderr cannot take it (a full disk): the exit code still tells."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    _standard_streams()
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)  # the help goes to stdout: its write errors are caught below
        if unknown:  # named by the subcommand's parser, whose --help lists its options
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        return int(args.func(args))
    except RagError as exc:
        _say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`rag ask … | head -1`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail
        return 141
    except OSError as exc:  # a full disk, a folder removed under a run: one line, not a traceback
        _say(f"error: {f'{exc.filename}: ' if exc.filename else ''}{exc.strerror or exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
