"""The divergence flow: resumable scoring into the warehouse, provenance views on top."""

from __future__ import annotations

from provenance_reference import provenance_counts, sentence_pairs

from flows.divergence import DivergenceConfig, resolve_model_id, run_divergence
from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer

COMPLETIONS = [
    "<think>\n5*3=15.\n7+15=22.\nCheck: 22-4=18.\n</think>\n\\boxed{18}",
    "<think>\n2+2=4. Then 4*3=12!\n</think>\n\\boxed{12}",
    "<think>\n1+1=2.\n</think>\n\\boxed{2}",
]


def test_divergence_flow_scores_resumes_and_feeds_the_views(wh, tiny_models, ensure_token_table, seed_traces):
    ensure_token_table(wh)
    teacher_id = resolve_model_id(str(tiny_models["teacher"]))
    rows = [
        {"trace_id": f"t{i}", "prompt_id": f"p{i}", "problem_text": f"Compute {i}.", "model_id": teacher_id, "completion_text": c}
        for i, c in enumerate(COMPLETIONS)
    ]
    rows.append({"trace_id": "eval0", "prompt_id": "pe", "problem_text": "Compute 8.", "model_id": teacher_id,
                 "completion_text": COMPLETIONS[1], "split": "eval"})  # not a training prompt: not scored by default
    rows.append({"trace_id": "other", "prompt_id": "p9", "problem_text": "Compute 9.", "model_id": "teacher-x@abc",
                 "completion_text": COMPLETIONS[0]})
    seed_traces(wh, rows)
    # t0's teacher log-probs were captured at generation time; t1, t2 need a teacher-forced pass
    captured = TeacherForcedScorer(tiny_models["teacher"], ScoringConfig(device="cpu"), model_id=teacher_id).score(
        [ScoringItem("t0", "Compute 0.", COMPLETIONS[0])]
    )
    wh.load("raw.raw_token_logprobs", captured, key=["trace_id", "model_id"])

    cfg = DivergenceConfig(student=str(tiny_models["student"]), teacher=str(tiny_models["teacher"]),
                           scoring=ScoringConfig(device="cpu"), shard_size=2)
    stats = run_divergence(cfg, warehouse=str(wh.path))
    assert stats["teacher_model_id"] == teacher_id
    assert (stats["n_in"], stats["n_out"], stats["n_rejected"]) == (3, 3, 0)
    assert stats["teacher_tokens"] == sum(len(c) for c in COMPLETIONS[1:])  # char-level teacher: one token per char of t1, t2
    assert wh.scalar("select count(*) from raw.raw_token_logprobs") == 3 + 3
    assert wh.scalar("select status from meta.runs where run_id = ?", [stats["run_id"]]) == "completed"

    # idempotent: nothing left to do
    again = run_divergence(cfg, warehouse=str(wh.path))
    assert (again["n_in"], again["sentence_rows"], again["token_rows"]) == (0, 0, 0)

    # all teachers: the other teacher's trace has no captured log-probs and no weights → rejected, with reason
    open_cfg = DivergenceConfig(student=str(tiny_models["student"]), scoring=ScoringConfig(device="cpu"))
    other = run_divergence(open_cfg, warehouse=str(wh.path))
    assert other["n_in"] == 1 and other["reasons"] == {"teacher_logprobs_missing": 1}
    assert wh.scalar("select reason_code from raw.raw_rejections where source_ref = 'other'") == "teacher_logprobs_missing"

    # the SQL view agrees with the in-memory classification, at the default and at another beta
    scores = wh.query("select * from raw.raw_sentence_scores")
    for beta in (0.1, 0.0):
        want = provenance_counts(sentence_pairs(scores, teacher_id, stats["student_model_id"], beta))
        got = wh.query(
            "select trace_id, n_sentences, n_teacher, n_common, n_student from curated.cur_provenance_traces_at(beta := ?)"
            " order by trace_id", [beta],
        )
        assert got.to_dicts() == want.select(got.columns).to_dicts()
    view = wh.query("select * from curated.cur_provenance_traces order by trace_id")
    assert view["trace_id"].to_list() == ["t0", "t1", "t2"] and (view["beta"] == 0.1).all()
    assert view["n_sentences"].to_list() == [3, 2, 1]


def test_divergence_flow_under_prefect(prefect_harness, wh, tiny_models, ensure_token_table, seed_traces):
    from flows.divergence import divergence_flow

    ensure_token_table(wh)
    teacher_id = resolve_model_id(str(tiny_models["teacher"]))
    seed_traces(wh, [{"trace_id": "a", "prompt_id": "pa", "problem_text": "Compute 1+1.", "model_id": teacher_id,
                      "completion_text": COMPLETIONS[2]}])
    stats = divergence_flow(warehouse=str(wh.path), teacher=str(tiny_models["teacher"]),
                            student=str(tiny_models["student"]), device="cpu")
    assert (stats["n_in"], stats["n_out"]) == (1, 1)
    assert wh.scalar("select count(*) from curated.cur_provenance_sentences") == 1
