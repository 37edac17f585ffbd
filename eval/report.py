"""report.html (self-contained: inline CSS, charts as base64 PNG data URIs, no network) and report.md."""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Mapping, Sequence
from typing import Any

from eval.summary import HEADLINE, RATE_KEYS, deltas, verdict

__all__ = ["render_html", "render_markdown", "render_reports"]

Record = Mapping[str, Any]
KIND_COLUMNS = ("n", "n_errors", *HEADLINE)
CHART_KEYS = ("answer_correct", "correct_refusal", "false_refusal", "claim_support", "citation_coverage",
              "retrieval_hit_at_k")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232a;max-width:1500px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d5dae0;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f1f4f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}.better{color:#137333}.worse{color:#b3261e}
.meta{color:#5f6b7a}.claim{padding:1px 2px;border-radius:3px}.unsupported{background:#fde2e1;color:#8c1d18}
.uncited{background:#fff1cc}.supported{background:#e6f4ea}.err{color:#b3261e;font-weight:600}
.gold{background:#e8f0fe}.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:12px;margin:1px}
.ok{background:#e6f4ea;color:#137333}.bad{background:#fde2e1;color:#8c1d18}.na{background:#eceff1;color:#5f6b7a}
details{margin:2px 0}summary{cursor:pointer}.passage{margin:4px 0 8px;padding:4px 8px;border-left:3px solid #d5dae0}
.passage.gold{border-left-color:#1a73e8}img{max-width:100%;border:1px solid #e3e7eb;margin:6px 12px 6px 0}
td.case{min-width:260px}td.ans{min-width:380px}
"""


# ---- formatting ------------------------------------------------------------------------------
def fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key.endswith("_s"):
        return f"{value:.2f} s"
    if key in RATE_KEYS:
        return f"{100 * value:.1f}%"
    return str(value)


def fmt_delta(key: str, d: float | None) -> tuple[str, str]:
    """(text, css class) of a change against the baseline."""
    if d is None:
        return "", ""
    text = f"{d:+.2f} s" if key.endswith("_s") else f"{100 * d:+.1f} pp"
    return text, verdict(key, d)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# ---- charts ----------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def charts(summary: Mapping[str, Any], records: Sequence[Record]) -> list[tuple[str, str]]:
    """(title, data URI) of each chart: metrics by kind, latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    kinds = list(summary.get("by_kind", {}))
    if kinds:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(kinds) + 2), 3.6))
        width = 0.8 / len(CHART_KEYS)
        for i, key in enumerate(CHART_KEYS):
            xs = [j + i * width for j, k in enumerate(kinds) if summary["by_kind"][k].get(key) is not None]
            ys = [max(summary["by_kind"][k][key], 0.01) for k in kinds if summary["by_kind"][k].get(key) is not None]
            ax.bar(xs, ys, width, label=key)  # a 0 shows as a sliver, unlike "not defined"
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(kinds))], kinds, rotation=20, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction")
        ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
        ax.set_title("Metrics by kind (missing bar = not defined for that kind)")
        out.append(("Metrics by kind", _png(fig)))
        plt.close(fig)
    total = [r["timings"]["total_s"] for r in records if r.get("timings", {}).get("total_s") is not None]
    ttft = [r["timings"]["ttft_s"] for r in records if r.get("timings", {}).get("ttft_s") is not None]
    if total:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        bins = min(30, max(5, len(total) // 2))
        ax.hist(total, bins=bins, alpha=0.7, label="total")
        if ttft:
            ax.hist(ttft, bins=bins, alpha=0.6, label="first token")
        ax.set_xlabel("seconds")
        ax.set_ylabel("cases")
        ax.legend()
        ax.set_title("Latency per case")
        out.append(("Latency", _png(fig)))
        plt.close(fig)
    return out


# ---- tables ----------------------------------------------------------------------------------
def headline_rows(summary: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[list[str]]:
    """Rows: metric, value, min..max across runs (when repeated), baseline, delta, delta class."""
    diff = deltas(summary, baseline)
    rows = []
    for key in HEADLINE:
        spread = (summary.get("spread") or {}).get(key) or {}
        rng = (f"{fmt(key, spread.get('min'))} .. {fmt(key, spread.get('max'))}"
               if summary.get("runs", 1) > 1 and spread.get("min") is not None else "")
        d_text, d_class = fmt_delta(key, diff.get(key))
        rows.append([key, fmt(key, summary.get(key)), rng, fmt(key, baseline.get(key)) if baseline else "",
                     d_text, d_class])
    return rows


HEAD = ("metric", "value", "min .. max across runs", "baseline", "change")


def _columns(summary: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[int]:
    """Headline columns to show: spread only when repeated, baseline and change only with a baseline."""
    return [0, 1] + ([2] if summary.get("runs", 1) > 1 else []) + ([3, 4] if baseline else [])


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]], num_from: int = 1) -> str:
    out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td class=\"num\">{c}</td>" if i >= num_from else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>")
    return "\n".join(out) + "</table>"


def _badge(label: str, value: bool, good: bool = True) -> str:
    return f'<span class="badge {"ok" if value == good else "bad"}">{esc(label)}: {"yes" if value else "no"}</span>'


def _source(c: Mapping[str, Any]) -> str:
    return ", ".join(str(c[k]) for k in ("outlet", "date") if c.get(k))


def _case_row(r: Record) -> str:
    m = r.get("metrics", {})
    cell = [f"<b>{esc(r['id'])}</b> <span class=\"meta\">{esc(r['kind'])}"
            + (f" · run {int(r.get('run', 0)) + 1}" if r.get("run") else "") + "</span><br>"]
    for q, a in r.get("history") or []:
        cell.append(f"<div class=\"meta\">earlier: {esc(q)} → {esc(a)}</div>")
    cell.append(esc(r["question"]))
    if r.get("standalone_question") and r["standalone_question"] != r["question"]:
        cell.append(f"<div class=\"meta\">asked as: {esc(r['standalone_question'])}</div>")
    cell.append(f"<div class=\"meta\">reference: {esc(r.get('reference') or '(unanswerable)')}</div>")
    if r.get("error"):
        ans = f"<div class=\"err\">error: {esc(r['error'])}</div>"
    elif r.get("abstained"):
        ans = f"<i>{esc(r['answer'])}</i>"
        if r.get("draft"):
            ans += f"<div class=\"meta\">withheld draft: {esc(r['draft'])}</div>"
    else:
        parts = []
        for c in r.get("claims", []):
            tip = f"{c['verdict']}" + (f" ({c['reason']})" if c.get("reason") else "") + (
                f" P(yes)={c['score']:.2f}" if c.get("score") is not None else "")
            parts.append(f"<span class=\"claim {esc(c['verdict'])}\" title=\"{esc(tip)}\">{esc(c['text'])}</span>")
        ans = " ".join(parts) or esc(r.get("answer"))
        for c in r.get("claims", []):
            if c["verdict"] != "supported":
                ans += (f"<div class=\"claim {esc(c['verdict'])}\">{esc(c['verdict'])}: {esc(c['text'])}"
                        f"{' — ' + esc(c['reason']) if c.get('reason') else ''}</div>")
    cites = "".join(f"<div class=\"meta\">[{esc(c['n'])}] {esc(_source(c))} <code>{esc(c['article_id'])}</code>: "
                    f"{' '.join(f'“{esc(q)}”' for q in c.get('quotes') or [c['quote']])}</div>"
                    for c in r.get("citations", []))
    passages = "".join(
        f"<div class=\"passage{' gold' if p.get('gold') else ''}\"><b>[{esc(p['n'])}]</b> "
        f"{'★ gold ' if p.get('gold') else ''}<code>{esc(p['article_id'])}</code> score {esc(p['score'])}"
        f"{' (also: ' + esc(', '.join(p['also_reported_by'])) + ')' if p.get('also_reported_by') else ''}"
        f"<br>{esc(p['text'])}</div>" for p in r.get("contexts", []))
    n_gold = sum(1 for p in r.get("contexts", []) if p.get("gold"))
    label = f"{n_gold} gold" if r.get("sources") else "case names no sources"
    passages = f"<details><summary>{len(r.get('contexts', []))} passages, {label}</summary>{passages}</details>"
    badges = [_badge(label, m.get(key), good) for label, key, good in (
        ("correct", "answer_correct", True), ("refused ok", "correct_refusal", True),
        ("false refusal", "false_refusal", False), ("hit", "retrieval_hit", True)) if m.get(key) is not None]
    if m.get("n_claims"):
        badges.append(f"<span class=\"badge na\">claims {m['n_supported']}/{m['n_claims']} supported</span>")
    if m.get("missing") and m.get("answer_correct") is False:
        badges.append(f"<div class=\"meta\">missing: {esc(', '.join(m['missing']))}</div>")
    if r.get("timings", {}).get("total_s") is not None:
        badges.append(f"<div class=\"meta\">{r['timings']['total_s']:.2f} s</div>")
    return (f"<tr id=\"case-{esc(r['id'])}-{esc(r.get('run', 0))}\"><td class=\"case\">{''.join(cell)}</td>"
            f"<td class=\"ans\">{ans}{cites}</td><td>{passages}</td><td>{''.join(badges)}</td></tr>")


def render_html(summary: Mapping[str, Any], records: Sequence[Record], baseline: Mapping[str, Any] | None = None,
                info: Mapping[str, Any] | None = None) -> str:
    rows = [[esc(k), esc(v), esc(rng), esc(b), f'<span class="{cls}">{esc(d)}</span>']
            for k, v, rng, b, d, cls in headline_rows(summary, baseline)]
    cols = _columns(summary, baseline)
    table = _html_table([HEAD[i] for i in cols], [[r[i] for i in cols] for r in rows])
    kinds = summary.get("by_kind", {})
    kind_table = _html_table(["kind", *KIND_COLUMNS], [[esc(k), *(esc(fmt(c, v.get(c))) for c in KIND_COLUMNS)]
                                                        for k, v in kinds.items()])
    about = " · ".join(f"{esc(k)}: {esc(v)}" for k, v in (info or {}).items() if v is not None)
    imgs = "".join(f'<img alt="{esc(t)}" src="{u}">' for t, u in charts(summary, records))
    errors = [r for r in records if r.get("error")]
    body = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Eval report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Evaluation report</h1>",
        f"<p class=\"meta\">{time.strftime('%Y-%m-%d %H:%M')} · {about}</p>",
        f"<p>{summary['n_cases']} cases ({summary['n_answerable']} answerable, {summary['n_unanswerable']} "
        f"unanswerable), {summary.get('runs', 1)} run(s), k = {esc(summary.get('k'))}"
        + (f", <span class=\"err\">{len(errors)} errored (left out of the metrics)</span>" if errors else "")
        + "</p>",
        "<h2>Headline</h2>", table, "<h2>By kind</h2>", kind_table, "<h2>Charts</h2>", imgs,
        "<h2>Cases</h2><p class=\"meta\">Claims: <span class=\"claim supported\">supported</span> "
        "<span class=\"claim unsupported\">unsupported</span> <span class=\"claim uncited\">uncited</span>; "
        "★ marks passages from a gold source article.</p>",
        "<table><tr><th>case</th><th>answer and citations</th><th>retrieved passages</th><th>metrics</th></tr>",
        *(_case_row(r) for r in records), "</table></body></html>",
    ]
    return "\n".join(body)


def _outcome(m: Mapping[str, Any]) -> str:
    if m.get("answer_correct") is not None:
        return "right" if m["answer_correct"] else "refused" if m.get("false_refusal") else "wrong"
    if m.get("false_refusal") is not None:  # answerable, but with nothing to check the answer against
        return "refused" if m["false_refusal"] else "answered (not scored)"
    return "refused (right)" if m.get("correct_refusal") else "answered (should refuse)"


def case_lines(records: Sequence[Record]) -> list[str]:
    """One table row per case: its outcome and answer in the first run, and whether every run gave that
    answer; so runs on two machines or commits can be compared case by case from the committed report."""
    runs: dict[str, list[Record]] = {}
    for r in sorted(records, key=lambda r: int(r.get("run", 0))):
        runs.setdefault(str(r["id"]), []).append(r)
    lines = ["", "## Cases (first run)", "", "| case | kind | outcome | same in all runs | answer |",
             "|---|---|---|---|---|"]
    for case, rs in runs.items():
        first = rs[0]
        answer = f"error: {first['error']}" if first.get("error") else " ".join(str(first.get("answer") or "").split())
        same = "yes" if all(r.get("answer") == first.get("answer") and r.get("error") == first.get("error")
                            for r in rs) else "no"
        cell = answer[:200] + "…" if len(answer) > 200 else answer
        outcome = "error" if first.get("error") else _outcome(first.get("metrics") or {})
        lines.append(f"| {_md(case)} | {_md(first.get('kind'))} | {outcome} | {same} | {_md(cell)} |")
    return lines


def _md(value: object) -> str:
    """A table cell: on one line, its "|" escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def render_markdown(summary: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                    records: Sequence[Record] = ()) -> str:
    rows = headline_rows(summary, baseline)
    cols = _columns(summary, baseline)
    lines = [f"# Evaluation: {summary['n_cases']} cases ({summary['n_answerable']} answerable, "
             f"{summary['n_unanswerable']} unanswerable), {summary.get('runs', 1)} run(s), k={summary.get('k')}",
             "", "| " + " | ".join(HEAD[i] for i in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[i] for i in cols) + " |" for r in rows]
    if summary.get("n_errors"):
        lines += ["", f"{summary['n_errors']} case run(s) raised an error and are left out of the metrics."]
    lines += ["", "## By kind", "", "| kind | " + " | ".join(KIND_COLUMNS) + " |",
              "|---|" + "---|" * len(KIND_COLUMNS)]
    lines += ["| " + " | ".join([_md(k), *(fmt(c, v.get(c)) for c in KIND_COLUMNS)]) + " |"
              for k, v in summary.get("by_kind", {}).items()]
    if records:
        lines += case_lines(records)
    return "\n".join(lines) + "\n"


def render_reports(summary: Mapping[str, Any], records: Sequence[Record], baseline: Mapping[str, Any] | None = None,
                   info: Mapping[str, Any] | None = None) -> dict[str, str]:
    """File name -> text of both reports, so that they are written only once both are made."""
    return {"report.html": render_html(summary, records, baseline, info),
            "report.md": render_markdown(summary, baseline, records)}
