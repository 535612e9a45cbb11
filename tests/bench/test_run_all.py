"""`make bench` summary: every headline ratio judged against its goal; missing results are not passes."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO


def _run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", REPO / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = module
    spec.loader.exec_module(module)
    return module


def test_goals_judged_from_results_files():
    run_all = _run_all()
    goals = run_all.judge({
        "generate": {"ratio": 0.93},
        "scoring": {"throughput_ratio": 0.80},
        "dedup": {"minhash_vs_datasketch": {"end_to_end_speedup_ratio": 11.2}},
        "warehouse": {"keyed_load_throughput_ratio": 0.95},
        "verify": {"sandbox": {"overhead_ratio": 2.5}, "math": {"throughput_ratio": 1.9}},
    })
    assert goals["generation"]["met"] and goals["minhash"]["met"] and goals["keyed_load"]["met"]
    assert not goals["scoring"]["met"], "0.80 < 0.85"
    assert not goals["sandbox_overhead"]["met"], "a slow-down goal is an upper bound"
    assert goals["orchestration"]["missing"] and not goals["orchestration"]["met"]
    assert {"generation", "scoring", "minhash", "orchestration", "keyed_load"} <= set(goals)
    assert goals["minhash"]["goal"] == 10.0 and goals["minhash"]["op"] == ">="


def test_every_ratio_field_is_collected():
    run_all = _run_all()
    found = run_all._ratios({"a": {"speed_ratio": 2, "n": 3, "flag_ratio": True}, "b": [{"x_ratio": 0.5}]})
    assert found == {"a.speed_ratio": 2.0, "b[0].x_ratio": 0.5}
