import pytest

from tasks.experiment.ablation import ExperimentError, experiment_id_for, plot_results, render_markdown, results_table


def _m(domain, p1, pk):
    return {"domain": domain, "pass_at_1": p1, "pass_at_k": pk, "k": 4, "mean_completion_tokens": 40.0, "truncation_rate": 0.1}


ARMS = [
    {"policy": "base", "eval_id": "e0"},
    {"policy": "provenance", "eval_id": "e1", "dataset_name": "ab-provenance", "dataset_version": 1, "n_rows": 100,
     "mean_trace_tokens": 60.0, "training_run_id": "tr1"},
    {"policy": "random", "eval_id": "e2", "dataset_name": "ab-random", "dataset_version": 1, "n_rows": 100,
     "mean_trace_tokens": 55.0, "training_run_id": "tr2"},
]
METRICS = {"e0": [_m("all", 0.2, 0.4), _m("math", 0.25, 0.5)], "e1": [_m("math", 0.75, 0.9), _m("all", 0.6, 0.8)],
           "e2": [_m("all", 0.5, 0.7), _m("math", 0.5, 0.7)]}


def test_results_table_orders_arms_and_computes_deltas_against_base():
    table = results_table(ARMS, METRICS)
    assert table.select("policy", "domain").rows() == [("base", "all"), ("base", "math"), ("provenance", "all"),
                                                       ("provenance", "math"), ("random", "all"), ("random", "math")]
    deltas = dict(zip(zip(table["policy"], table["domain"]), table["delta_pass_at_1"]))
    assert deltas[("base", "all")] == 0.0
    assert deltas[("provenance", "all")] == pytest.approx(0.4) and deltas[("provenance", "math")] == pytest.approx(0.5)
    assert deltas[("random", "math")] == pytest.approx(0.25)


def test_results_table_needs_the_base_arm():
    with pytest.raises(ExperimentError, match="base"):
        results_table(ARMS[1:], METRICS)


def test_markdown_and_plot(tmp_path):
    table = results_table(ARMS, METRICS)
    md = render_markdown(table, title="Selection ablation", notes=["budget 100"])
    assert "| provenance | all | ab-provenance@1 | 100 | 60 | 60.0 | +40.0 | 80.0 (k=4) | 40 | 10.0 |" in md
    assert "| base | all | (untrained student) |" in md
    png = plot_results(table, tmp_path / "ablation.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_experiment_id_depends_on_policy_set_not_order():
    a = experiment_id_for(["random", "provenance"], 100, 0, "s", "t", "e", "h")
    assert a == experiment_id_for(["provenance", "random"], 100, 0, "s", "t", "e", "h")
    assert a != experiment_id_for(["provenance", "random"], 100, 1, "s", "t", "e", "h")
