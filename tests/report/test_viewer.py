"""The provenance trace viewer: one HTML file per dataset version / curate run, rendered in headless
Chromium when it is installed (Debian `chromium`; `make test` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess

import polars as pl
import pytest

from flows.report import dataset_viewer, write_viewer
from flows.select import run_select
from tasks.report.viewer import sentence_spans
from tasks.select.policies import SelectionConfig
from warehouse.runs import utcnow

TEACHER, STUDENT, SPLITTER = "teacher-a@1", "student@1", "sent-v1:reasoning:1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def seed(wh, n_prompts: int = 6, per_prompt: int = 3) -> None:
    """Traces whose sentences are teacher (student unsure), common or student (student surer)."""
    now = utcnow()
    prompts, traces, verdicts, sentences = [], [], [], []
    for p in range(n_prompts):
        pid = f"p{p}"
        prompts.append({"prompt_id": pid, "source": "t", "domain": "math", "problem_text": f"Compute {p}+{p} <b>[/x]</b>.",
                        "split": "train", "ingested_at": now, "run_id": "seed"})
        for k in range(per_prompt):
            tid = f"t{p}_{k}"
            parts = [f"step {j} <i>." for j in range(k + 2)]
            text = " ".join(parts)
            traces.append({"trace_id": tid, "prompt_id": pid, "model_id": TEACHER, "origin": "generated",
                           "sample_index": k, "completion_text": text, "n_completion_tokens": len(text),
                           "is_truncated": False, "temperature": 0.6 if k == 0 else 1.0, "created_at": now, "run_id": "seed"})
            verdicts.append({"trace_id": tid, "prompt_id": pid, "verifier": "math_verify", "verifier_version": "v",
                             "input_hash": tid, "verdict_status": "incorrect" if k == 2 else "correct",
                             "verdict_reason": "x", "score": 1.0, "verified_at": now, "run_id": "seed"})
            start = 0
            for j, part in enumerate(parts):
                student_lp = (-3.0, -0.5, -0.01)[(p + k + j) % 3]  # teacher | common | student sentence
                for model, lp in ((TEACHER, -0.1), (STUDENT, student_lp)):
                    sentences.append({"trace_id": tid, "sentence_index": j, "char_start": start, "char_end": start + len(part),
                                      "model_id": model, "n_tokens": 3, "mean_logprob": lp if model == STUDENT else -0.5,
                                      "splitter": SPLITTER, "scored_at": now, "run_id": "seed"})
                start += len(part) + 1
    wh.load("raw.raw_prompts", pl.DataFrame(prompts), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame(traces), key=["trace_id"])
    wh.load("raw.raw_verifications", pl.DataFrame(verdicts))
    wh.load("raw.raw_sentence_scores", pl.DataFrame(sentences))


@pytest.fixture
def published(wh):
    seed(wh)
    out = run_select("provenance", SelectionConfig(budget=5), warehouse=str(wh.path), dataset_name="prov",
                     student_model_id=STUDENT)
    return out["dataset"]["spec"]


def test_sentence_spans_escape_and_keep_gaps():
    text = "<b>A</b>. B! tail"
    html, counts = sentence_spans(text, [
        {"char_start": 0, "char_end": 9, "p_teacher": 0.9, "p_student": 0.1, "provenance_class": "teacher"},
        {"char_start": 10, "char_end": 12, "p_teacher": 0.5, "p_student": 0.9, "provenance_class": "student"},
    ])
    assert counts == {"teacher": 1, "common": 0, "student": 1}
    assert html.startswith('<span class="s s-teacher" data-class="teacher" title="teacher: p_T=0.9, p_S=0.1">&lt;b&gt;A')
    assert html.endswith("</span> tail") and "<b>" not in html


def test_dataset_viewer_has_one_row_per_dataset_row_with_coloured_sentences(wh, published, tmp_path):
    page = dataset_viewer(wh, published)
    n_rows = wh.scalar("select count(*) from curated.cur_dataset_rows where dataset_name = 'prov'")
    assert n_rows == 5
    assert len(re.findall(r'<tr class="trace" ', page)) == n_rows
    assert f'<span id="count" data-count="{n_rows}">{n_rows}</span>' in page
    assert {"s-teacher", "s-common", "s-student"} <= set(re.findall(r'class="s (s-\w+)"', page))
    assert re.search(r'title="teacher: p_T=0\.607, p_S=0\.0498"', page)
    assert "<b>[/x]</b>" not in page and "&lt;b&gt;[/x]&lt;/b&gt;" in page  # data is escaped
    assert page.count('data-selected="selected"') == n_rows and 'data-verdict="correct"' in page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_viewer_renders_in_headless_chromium(wh, published, tmp_path):
    path = write_viewer(dataset_viewer(wh, published), tmp_path / "viewer.html")
    profile = tmp_path / "profile"
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    dom = subprocess.run([*args, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    n_rows = wh.scalar("select count(*) from curated.cur_dataset_rows where dataset_name = 'prov'")
    assert len(re.findall(r'<tr class="trace" ', dom)) == n_rows
    assert f'data-count="{n_rows}"' in dom  # the script ran and counted the visible rows
    assert re.search(r'<span class="s s-teacher"', dom) and re.search(r'<span class="s s-student"', dom)
    shot = tmp_path / "viewer.png"
    subprocess.run([*args, f"--screenshot={shot}", "--window-size=1200,800", path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000


def test_run_viewer_lists_selected_and_rejected_traces_with_reasons(wh, published):
    from flows.report import run_viewer
    from warehouse.runs import finish_run, start_run

    curate = start_run(wh, flow_name="curate", stage="curate", config={"recipe": "t"})
    wh.execute("update meta.runs set parent_run_id = ? where stage = 'select'", [curate])
    finish_run(wh, curate, stats={"recipe": "t", "stages": [{"stage": "publish", "dataset": published}]})
    page = run_viewer(wh, curate)
    assert len(re.findall(r'<tr class="trace" ', page)) == 18  # every candidate of the select run
    assert page.count('data-selected="selected"') == 5 and page.count('data-selected="rejected"') == 13
    assert "select: verdict_not_correct" in page and "select: not_selected" in page
