"""`make ablation-quick` rewrites only the README block between its markers."""

import pytest

from bench.ablation_quick import END, START, minutes, replace_block


def test_the_block_between_the_markers_is_replaced_and_nothing_else():
    readme = f"# T\n\nbefore\n\n{START}\nold table\n{END}\n\nafter {START[:4]}\n"
    out = replace_block(readme, "| arm | pass@1 |\n|---|---|\n| random | 1.0 \\\\ |\n")
    assert out == f"# T\n\nbefore\n\n{START}\n| arm | pass@1 |\n|---|---|\n| random | 1.0 \\\\ |\n{END}\n\nafter {START[:4]}\n"
    assert replace_block(out, "new") == f"# T\n\nbefore\n\n{START}\nnew\n{END}\n\nafter {START[:4]}\n"
    with pytest.raises(SystemExit, match="no <!-- ablation-quick:start -->"):
        replace_block("# no markers\n", "x")
    assert minutes(1210.4) == "20 min 10 s"
