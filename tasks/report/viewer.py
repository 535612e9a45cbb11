"""The provenance trace viewer: one self-contained HTML file (inline CSS and JS, the data embedded
as JSON, no server) listing traces with every sentence coloured by its provenance class.

Pure: takes the rows as polars DataFrames, returns the HTML text. Each trace is one
`<tr class="trace" data-trace-id=...>` rendered here (the page reads without JavaScript); the
script only filters (teacher, class, verdict, selection) and updates the visible count.

>>> rows = pl.DataFrame({"trace_id": ["t1"], "selected": [True], "reason": ["selected: main #0"],
...     "teacher": ["a"], "temperature": [0.8], "verdict": ["correct"], "completion_text": ["Hi. Yo."],
...     "problem_text": ["1+1?"], "n_completion_tokens": [4]})
>>> sentences = pl.DataFrame({"trace_id": ["t1"], "char_start": [0], "char_end": [3],
...     "p_teacher": [0.9], "p_student": [0.2], "provenance_class": ["teacher"]})
>>> page = render_viewer("toy@1", rows, sentences)
>>> page.count('class="trace"'), 'class="s s-teacher"' in page
(1, True)
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import polars as pl

TEMPLATE = Path(__file__).with_name("viewer.html")
CLASSES = ("teacher", "common", "student")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def sentence_spans(text: str, sentences: list[dict]) -> tuple[str, dict[str, int]]:
    """HTML of `text` with each scored sentence in a coloured `<span>` (p_T and p_S in its title);
    text between or outside scored sentences is left plain. Returns (html, counts per class).

    >>> sentence_spans("A. B.", [{"char_start": 3, "char_end": 5, "p_teacher": 0.5,
    ...                          "p_student": 0.4, "provenance_class": "common"}])[0]
    'A. <span class="s s-common" data-class="common" title="common: p_T=0.5, p_S=0.4">B.</span>'
    """
    counts = dict.fromkeys(CLASSES, 0)
    out: list[str] = []
    pos = 0
    for s in sorted(sentences, key=lambda s: s["char_start"]):
        start, end = max(int(s["char_start"]), pos), min(int(s["char_end"]), len(text))
        if end <= start:
            continue
        cls = s["provenance_class"] if s["provenance_class"] in CLASSES else "common"
        counts[cls] += 1
        out.append(_esc(text[pos:start]))
        title = f"{cls}: p_T={_fmt(s.get('p_teacher'))}, p_S={_fmt(s.get('p_student'))}"
        out.append(f'<span class="s s-{cls}" data-class="{cls}" title="{_esc(title)}">{_esc(text[start:end])}</span>')
        pos = end
    out.append(_esc(text[pos:]))
    return "".join(out), counts


def _row_html(row: dict, sentences: list[dict]) -> str:
    body, counts = sentence_spans(row.get("completion_text") or "", sentences)
    classes = " ".join(c for c in CLASSES if counts[c])
    selected = "selected" if row.get("selected") else "rejected"
    counts_text = " / ".join(str(counts[c]) for c in CLASSES) if sentences else "not scored"
    attrs = {
        "data-trace-id": row["trace_id"], "data-teacher": row.get("teacher"), "data-verdict": row.get("verdict"),
        "data-selected": selected, "data-classes": classes,
    }
    attr_text = " ".join(f'{k}="{_esc(v)}"' for k, v in attrs.items())
    problem = _esc(row.get("problem_text"))
    return (
        f'<tr class="trace" {attr_text}>'
        f'<td class="meta"><div class="tid">{_esc(row["trace_id"])}</div>'
        f'<div>teacher <b>{_esc(row.get("teacher"))}</b></div>'
        f'<div>T = {_esc(_fmt(row.get("temperature")))}, {_esc(row.get("n_completion_tokens"))} tokens</div>'
        f'<div class="v v-{_esc(row.get("verdict"))}" title="{_esc(row.get("verdict_detail"))}">{_esc(row.get("verdict"))}</div>'
        f'<div class="sel sel-{selected}">{selected}</div><div class="why">{_esc(row.get("reason"))}</div>'
        f'<div class="counts" title="teacher / common / student sentences">{_esc(counts_text)}</div></td>'
        f'<td class="text"><details><summary>problem</summary><pre>{problem}</pre></details>'
        f'<div class="completion">{body}</div></td></tr>'
    )


def render_viewer(title: str, rows: pl.DataFrame, sentences: pl.DataFrame, *, facts: dict | None = None) -> str:
    """The viewer page.

    Args:
        title: what the page shows (`NAME@VERSION` or the curate run id).
        rows: one row per trace: trace_id, selected, reason, teacher, temperature, verdict,
            completion_text, problem_text, n_completion_tokens (verdict_detail optional).
        sentences: trace_id, char_start, char_end, p_teacher, p_student, provenance_class.
        facts: shown in the header and embedded (student, beta, splitter, warehouse, ...).
    """
    by_trace: dict[str, list[dict]] = {}
    for s in sentences.iter_rows(named=True) if sentences.height else []:
        by_trace.setdefault(s["trace_id"], []).append(s)
    body_rows = [_row_html(r, by_trace.get(r["trace_id"], [])) for r in rows.iter_rows(named=True)]
    n_classes = {c: 0 for c in CLASSES}
    for s in sentences.iter_rows(named=True) if sentences.height else []:
        if s["provenance_class"] in n_classes:
            n_classes[s["provenance_class"]] += 1
    summary = {
        "title": title, "n_rows": rows.height,
        "n_selected": int(rows["selected"].sum()) if rows.height else 0,
        "n_sentences": dict(n_classes), "facts": facts or {},
        "teachers": sorted({str(t) for t in rows["teacher"].to_list()}) if rows.height else [],
        "verdicts": sorted({str(v) for v in rows["verdict"].to_list()}) if rows.height else [],
        "rows": [{k: r.get(k) for k in ("trace_id", "teacher", "temperature", "verdict", "selected", "reason")}
                 | {"sentences": [[s["char_start"], s["char_end"], s["provenance_class"], s["p_teacher"], s["p_student"]]
                                  for s in by_trace.get(r["trace_id"], [])]}
                 for r in rows.iter_rows(named=True)],
    }
    options = {
        "teacher": "".join(f'<option value="{_esc(t)}">{_esc(t)}</option>' for t in summary["teachers"]),
        "verdict": "".join(f'<option value="{_esc(v)}">{_esc(v)}</option>' for v in summary["verdicts"]),
    }
    facts_html = " · ".join(f"{_esc(k)} <b>{_esc(v)}</b>" for k, v in (facts or {}).items() if v is not None)
    data = json.dumps(summary, default=str, ensure_ascii=False).replace("</", "<\\/")
    page = TEMPLATE.read_text()
    for key, value in {
        "TITLE": _esc(title), "FACTS": facts_html, "N_ROWS": str(rows.height), "N_SELECTED": str(summary["n_selected"]),
        "N_TEACHER": str(n_classes["teacher"]), "N_COMMON": str(n_classes["common"]), "N_STUDENT": str(n_classes["student"]),
        "TEACHER_OPTIONS": options["teacher"], "VERDICT_OPTIONS": options["verdict"], "ROWS": "\n".join(body_rows),
        "DATA": data,
    }.items():
        page = page.replace("{{" + key + "}}", value)
    return page


__all__ = ["render_viewer", "sentence_spans"]
