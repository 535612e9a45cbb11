import polars as pl
import pytest

from tasks.train.config import TrainError
from tasks.train.data import examples_hash, to_sft_examples


def test_prompt_reasoning_answer_rows_become_prompt_completion_with_think_block():
    rows = pl.DataFrame({"prompt": ["Compute 1 + 2."], "reasoning": ["1+2=3."], "answer": ["\\boxed{3}"]})
    [ex] = to_sft_examples(rows, system_prompt="Be brief.")
    assert ex["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Compute 1 + 2."}]
    assert ex["completion"] == [{"role": "assistant", "content": "<think>\n1+2=3.\n</think>\n\n\\boxed{3}"}]


def test_missing_reasoning_gives_answer_only_completion():
    [ex] = to_sft_examples(pl.DataFrame({"prompt": ["p"], "reasoning": [None], "answer": ["a"]}, schema_overrides={"reasoning": pl.String}))
    assert ex["completion"][0]["content"] == "a"


def test_messages_rows_split_at_last_assistant_turn():
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nr\n</think>\n\na"}]
    [ex] = to_sft_examples(pl.DataFrame({"messages": [msgs]}))
    assert ex["prompt"] == msgs[:1] and ex["completion"] == msgs[1:]


@pytest.mark.parametrize(
    "rows, message",
    [
        (pl.DataFrame({"prompt": ["  "], "answer": ["a"]}), "row 0: field 'prompt' is empty"),
        (pl.DataFrame({"prompt": ["p"], "reasoning": [None], "answer": [""]}, schema_overrides={"reasoning": pl.String}), "both empty"),
        (pl.DataFrame({"question": ["p"]}), "missing \\['prompt', 'answer'\\]"),
        (pl.DataFrame({"messages": [[{"role": "user", "content": "q"}]]}), "row 0: field 'messages'"),
        (pl.DataFrame({"prompt": [], "answer": []}, schema={"prompt": pl.String, "answer": pl.String}), "no rows"),
    ],
)
def test_unusable_rows_raise_naming_row_and_field(rows, message):
    with pytest.raises(TrainError, match=message):
        to_sft_examples(rows)


def test_examples_hash_ignores_order_but_not_content():
    rows = pl.DataFrame({"prompt": ["a", "b"], "answer": ["1", "2"]})
    h = examples_hash(to_sft_examples(rows))
    assert h == examples_hash(to_sft_examples(rows.reverse()))
    assert h != examples_hash(to_sft_examples(rows.with_columns(answer=pl.lit("1"))))
