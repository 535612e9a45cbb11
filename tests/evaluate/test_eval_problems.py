import json

import pytest

from tasks.evaluate.config import EvalConfig, EvalError
from tasks.evaluate.problems import eval_set_hash, load_eval_set


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_toyworld_layout_loads(tmp_path):
    path = _write(tmp_path / "eval.jsonl", [
        {"id": "m1", "domain": "math", "problem": "Compute 1 + 2.", "answer": "3", "tests": []},
        {"id": "c1", "domain": "code", "problem": "Write f(x).", "answer": None, "tests": ["assert f(1) == 1"]},
    ])
    df = load_eval_set(path)
    assert df.rows() == [("m1", "math", "Compute 1 + 2.", "3", None), ("c1", "code", "Write f(x).", None, '["assert f(1) == 1"]')]
    assert load_eval_set(path, limit=1).height == 1


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"id": "a", "problem": " ", "answer": "1"}], r"eval.jsonl:1: field 'problem' is empty"),
        ([{"id": "a", "problem": "p", "answer": "1"}, {"id": "b", "problem": "q"}], r"eval.jsonl:2: math problem has no 'answer'"),
        ([{"id": "a", "domain": "code", "problem": "p"}], r":1: code problem has no 'tests'"),
        ([{"id": "a", "problem": "p", "answer": "1"}, {"id": "a", "problem": "q", "answer": "2"}], r"problem ids used twice: \['a'\]"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, rows, message):
    with pytest.raises(EvalError, match=message):
        load_eval_set(_write(tmp_path / "eval.jsonl", rows))


def test_invalid_json_and_missing_file(tmp_path):
    bad = tmp_path / "eval.jsonl"
    bad.write_text('{"id": "a", "problem": "p", "answer": "1"}\n{oops\n')
    with pytest.raises(EvalError, match="eval.jsonl:2: invalid JSON"):
        load_eval_set(bad)
    with pytest.raises(EvalError, match="does not exist"):
        load_eval_set(tmp_path / "missing.jsonl")


def test_eval_set_hash_tracks_content_not_order(tmp_path):
    rows = [{"id": "a", "problem": "p", "answer": "1"}, {"id": "b", "problem": "q", "answer": "2"}]
    h = eval_set_hash(load_eval_set(_write(tmp_path / "a.jsonl", rows)))
    assert h == eval_set_hash(load_eval_set(_write(tmp_path / "b.jsonl", rows[::-1])))
    rows[1]["answer"] = "3"
    assert h != eval_set_hash(load_eval_set(_write(tmp_path / "c.jsonl", rows)))


def test_eval_config_fingerprint_ignores_engine_knobs():
    assert str(EvalConfig(batch_size=8, device="cpu")) == str(EvalConfig())
    assert str(EvalConfig(k=8)) != str(EvalConfig())
    with pytest.raises(EvalError, match="n_samples"):
        EvalConfig(k=4, n_samples=2)
    with pytest.raises(EvalError, match=r"unknown key\(s\) \['kk'\]"):
        EvalConfig.from_dict({"kk": 1})
