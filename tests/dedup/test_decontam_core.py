"""Decontamination core: benchmark files, n-gram overlap, template n-grams, formula identity."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tasks.dedup.decontam import (
    Benchmark,
    DecontamConfig,
    DecontamError,
    find_contamination,
    load_benchmark,
    parse_benchmark_spec,
)

LONG = (
    "Let ABCD be a convex quadrilateral whose diagonals meet at P. The circumcircles of triangles "
    "APB and CPD meet again at Q. Prove that the line PQ bisects the segment joining the midpoints."
)


def _bench(*items: tuple[str, str]) -> Benchmark:
    return Benchmark.from_items("olymp", items)


@pytest.mark.parametrize(
    ("prompt", "flagged"),
    [
        (LONG, True),  # verbatim
        ("Hint: " + LONG[:120] + " ... and more words follow here.", True),  # a copied passage
        ("Prove that the angle bisectors of a triangle are concurrent at one point.", False),
        ("Compute 7 + 5 * 3 - 4.", False),
    ],
)
def test_ngram_overlap(prompt, flagged):
    out = find_contamination(pl.DataFrame({"prompt_id": ["p"], "text": [prompt]}), [_bench(("b1", LONG))])
    assert (out.height == 1) is flagged
    if flagged:
        assert out.row(0, named=True)["benchmark_name"] == "olymp"
        assert out.row(0, named=True)["match_kind"] == "ngram"


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("Compute 7 + 5 * 3 - 4.", "formula"),  # verbatim
        ("Work out 7+5*3-4.", "formula"),  # reworded
        ("Calculate: 7 + 5 * 3 - 4", "formula"),
        ("Compute 7 + 5 * 3 - 5.", None),  # one digit differs: another problem
    ],
)
def test_formula_leaks(prompt, kind):
    bench = _bench(("b1", "Compute 7 + 5 * 3 - 4."), ("b2", "What is 6 * 7 + 6 + 1?"))
    out = find_contamination(pl.DataFrame({"prompt_id": ["p"], "text": [prompt]}), [bench])
    assert (out["match_kind"].to_list() or [None])[0] == kind


def test_template_ngrams_and_numbers_do_not_flag():
    items = [(f"b{i}", f"Write a Python function f(x) that returns {i}*x + {i + 1}.") for i in range(1, 9)]
    prompts = pl.DataFrame(
        {"prompt_id": ["same", "other"], "text": [items[2][1], "Write a Python function f(x) that returns 9*x - 1."]}
    )
    out = find_contamination(prompts, [Benchmark.from_items("codebench", items)])
    assert out["prompt_id"].to_list() == ["same"]
    assert out["benchmark_item_id"].to_list() == ["b3"]


def test_long_prompt_with_numbers_needs_the_items_numbers():
    bench = _bench(("b1", "A farmer has 17 sheep and all but 9 run away; how many sheep does the farmer have left now?"))
    copied = "A farmer has 17 sheep and all but 9 run away; how many sheep does the farmer have left now?"
    changed = "A farmer has 23 sheep and all but 9 run away; how many sheep does the farmer have left now?"
    out = find_contamination(pl.DataFrame({"prompt_id": ["c", "x"], "text": [copied, changed]}), [bench])
    assert out["prompt_id"].to_list() == ["c"]
    loose = find_contamination(
        pl.DataFrame({"prompt_id": ["x"], "text": [changed]}), [bench], DecontamConfig(require_numbers=False)
    )
    assert loose.height == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("aime=data/aime.jsonl#question", ("aime", "data/aime.jsonl", "question")),
        ("data/math500.parquet#problem", ("math500", "data/math500.parquet", "problem")),
        ("bench.jsonl", ("bench", "bench.jsonl", None)),
    ],
)
def test_parse_benchmark_spec(spec, expected):
    name, path, field = parse_benchmark_spec(spec)
    assert (name, str(path), field) == expected


def test_load_benchmark_jsonl_and_parquet(tmp_path):
    rows = [{"id": "q1", "question": "What is 2 + 3 * 4?"}, {"id": "q2", "question": "What is 9 - 8 * 1?"}]
    jsonl = tmp_path / "mini.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pq = tmp_path / "mini.parquet"
    pl.DataFrame(rows).write_parquet(pq)
    a = load_benchmark(str(jsonl))
    b = load_benchmark(f"mini={pq}#question")
    assert a.name == b.name == "mini"
    assert a.items == b.items == (("q1", "What is 2 + 3 * 4?"), ("q2", "What is 9 - 8 * 1?"))
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1, "question": "ok"}\n{not json\n', r"bad\.jsonl:2: invalid JSON"),
        ('{"id": 1, "answer": "4"}\n', r"bad\.jsonl:1: no text field"),
        ('{"id": 1, "question": ""}\n', r"bad\.jsonl:1: field 'question' is empty"),
        ("\n", r"bad\.jsonl: benchmark has no items"),
    ],
)
def test_load_benchmark_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DecontamError, match=message):
        load_benchmark(str(path))


def test_missing_file_and_field(tmp_path):
    with pytest.raises(DecontamError, match="not found"):
        load_benchmark(str(tmp_path / "nope.jsonl"))
    path = tmp_path / "b.jsonl"
    path.write_text('{"id": 1, "question": "x"}\n')
    with pytest.raises(DecontamError, match="field 'problem' not found"):
        load_benchmark(f"{path}#problem")
