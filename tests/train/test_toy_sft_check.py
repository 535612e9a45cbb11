import json

import pytest

from tests.conftest import TOYWORLD

pytestmark = pytest.mark.skipif(not (TOYWORLD / "data" / "train.jsonl").is_file(), reason="toy world data not built")


def test_teacher_rows_are_teacher_a_traces_of_the_math_train_prompts():
    from tasks.common.text import join_think
    from toyworld.problems import check_math, expr_in_problem, teacher_a_trace
    from toyworld.toy_sft_check import teacher_rows

    path = TOYWORLD / "data" / "train.jsonl"
    math = [json.loads(line) for line in path.read_text().splitlines() if json.loads(line)["domain"] == "math"]
    rows = teacher_rows(path, None)
    assert rows.height == len(math)
    first = rows.row(0, named=True)
    assert first["prompt"] == math[0]["problem"]
    assert join_think(first["reasoning"], first["answer"]).replace("\n\n", "\n") == teacher_a_trace(expr_in_problem(math[0]["problem"]))
    assert check_math(first["answer"], math[0]["answer"])
    assert teacher_rows(path, 5).height == 5
