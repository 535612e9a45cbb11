"""REDI and OPD losses against values computed by hand on two-example batches (and through the trainers)."""

import math

import polars as pl
import pytest
import torch

from tasks.train.opd import align_teacher_logprobs, clipped_advantages, collate_opd, opd_loss
from tasks.train.redi import redi_loss, to_pair_examples

# -- REDI: L = -log pi(y_w|x)/|y_w| + alpha * log pi(y_l|x)/|y_l|, mean over pairs -----------------------

CHOSEN = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -2.0]])
CHOSEN_MASK = torch.tensor([[1, 1, 0], [1, 1, 1]])
REJECTED = torch.tensor([[-3.0, 0.0, 0.0], [-1.0, -4.0, 0.0]])
REJECTED_MASK = torch.tensor([[1, 0, 0], [1, 1, 0]])


def test_redi_loss_by_hand():
    # pair 1: -(-3/2) + 0.8 * (-3/1) = 1.5 - 2.4 = -0.9
    # pair 2: -(-3/3) + 0.8 * (-5/2) = 1.0 - 2.0 = -1.0
    loss = redi_loss(CHOSEN, CHOSEN_MASK, REJECTED, REJECTED_MASK, alpha=0.8)
    assert float(loss) == pytest.approx((-0.9 + -1.0) / 2)


def test_redi_negative_term_sign_and_length_normalisation():
    chosen, rejected = CHOSEN.clone().requires_grad_(), REJECTED.clone().requires_grad_()
    redi_loss(chosen, CHOSEN_MASK, rejected, REJECTED_MASK, alpha=0.8).backward()
    # d L / d log pi(y_l,t) = +alpha / |y_l| / n_pairs: descending the loss pushes the negative's log-prob down
    assert rejected.grad.flatten().tolist() == pytest.approx([0.8 / 1 / 2, 0, 0, 0.8 / 2 / 2, 0.8 / 2 / 2, 0])
    # d L / d log pi(y_w,t) = -1 / |y_w| / n_pairs: the positive's log-prob goes up
    assert chosen.grad.flatten().tolist() == pytest.approx([-1 / 2 / 2, -1 / 2 / 2, 0] + [-1 / 3 / 2] * 3)
    # alpha = 0 is plain length-normalised SFT on the positives
    assert float(redi_loss(CHOSEN, CHOSEN_MASK, REJECTED, REJECTED_MASK, alpha=0.0)) == pytest.approx((1.5 + 1.0) / 2)


REDI_ROWS = pl.DataFrame({
    "trace_id": ["w1", "l1", "w2", "l2", "w3"], "prompt_id": ["p1", "p1", "p2", "p2", "p3"], "rank": [1, 1, 2, 2, 3],
    "stage": ["positive", "negative", "positive", "negative", "positive"],
    "prompt": ["Compute 1 + 2.", "Compute 1 + 2.", "Compute 3 * 3.", "Compute 3 * 3.", "Compute 2 - 1."],
    "reasoning": ["1+2=3.", "1+2=4.", "3*3=9.", "3*3=6.", "2-1=1."],
    "answer": ["\\boxed{3}", "\\boxed{4}", "\\boxed{9}", "\\boxed{6}", "\\boxed{1}"],
})


def test_pairs_are_same_prompt_positive_and_negative():
    examples, unpaired = to_pair_examples(REDI_ROWS)
    assert len(examples) == 2 and unpaired == [("w3", "redi_unpaired")]
    assert examples[0]["prompt"] == [{"role": "user", "content": "Compute 1 + 2."}]
    assert "1+2=3." in examples[0]["chosen"][0]["content"] and "1+2=4." in examples[0]["rejected"][0]["content"]
    assert "3*3=9." in examples[1]["chosen"][0]["content"] and "3*3=6." in examples[1]["rejected"][0]["content"]


def _completion_logprobs(model, prompt_ids, completion_ids):
    """Independent reference: one plain forward pass, log-softmax, the completion tokens' log-probs."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return [float(logp[len(prompt_ids) + i - 1, t]) for i, t in enumerate(completion_ids)]


def test_redi_trainer_loss_equals_hand_computation_on_a_tiny_model(tiny_lm, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from tasks.train.redi import _redi_trainer_class

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)
    examples, _ = to_pair_examples(REDI_ROWS)
    args = DPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=2, max_length=256,
                     activation_checkpointing=False)
    trainer = _redi_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tok,
                                    redi_alpha=0.8)
    assert trainer.ref_model is None
    data = trainer.train_dataset
    batch = trainer.data_collator([data[0], data[1]])
    model.eval()
    with torch.no_grad():
        got = float(trainer.compute_loss(model, batch))
    terms = []
    for ex in (data[0], data[1]):
        w = _completion_logprobs(model, ex["prompt_ids"], ex["chosen_ids"])
        lo = _completion_logprobs(model, ex["prompt_ids"], ex["rejected_ids"])
        terms.append(-sum(w) / len(w) + 0.8 * sum(lo) / len(lo))
    assert got == pytest.approx(sum(terms) / 2, rel=1e-4)


# -- OPD: A_t = clip(log pi_T - log pi_student, -c, c); L = -sum_t A_t log pi_theta(y_t) / n_tokens ------

def test_opd_advantages_are_clipped_symmetrically():
    # raw: -0.1 - (-3.0) = 2.9 -> 2.0; -6.0 - (-1.0) = -5.0 -> -2.0; -1.0 - (-1.5) = 0.5 stays
    assert clipped_advantages([-0.1, -6.0, -1.0], [-3.0, -1.0, -1.5], 2.0) == pytest.approx([2.0, -2.0, 0.5])


def test_opd_loss_by_hand():
    logps = torch.tensor([[-1.0, -2.0], [-0.5, -9.0]])
    adv = torch.tensor([[0.5, -1.0], [2.0, 7.0]])
    mask = torch.tensor([[1, 1], [1, 0]])  # the second row's last position is padding: neither its A nor its log-prob counts
    # sum A*logp = 0.5*-1 + -1*-2 + 2*-0.5 = 0.5 over n_tokens = 3 -> L = -0.5/3
    assert float(opd_loss(logps, adv, mask)) == pytest.approx(-0.5 / 3)
    x = logps.clone().requires_grad_()
    opd_loss(x, adv, mask).backward()
    # dL/dlogp = -A/n: a token the teacher likes more than the student (A > 0) is pushed up
    assert x.grad.flatten().tolist() == pytest.approx([-0.5 / 3, 1.0 / 3, -2.0 / 3, 0.0])


@pytest.mark.parametrize(
    "student_starts, teacher_starts, teacher_lps, n_chars, expected",
    [
        ([0, 2], [0, 1, 2], [-0.5, -0.25, -1.0], 3, [-0.75, -1.0]),      # a student token spans two teacher chars
        ([0, 1, 2], [0, 1, 2], [-0.5, -0.25, -1.0], 3, [-0.5, -0.25, -1.0]),  # same tokenization
        ([0, 1], [0, 2], [-0.5, -1.0], 3, None),                          # student boundary 1 is inside a teacher token
        ([0, 1, 2], [0, 1], [-0.5, -0.25], 3, None),                      # teacher scores stop early
    ],
)
def test_teacher_logprobs_align_to_student_tokens(student_starts, teacher_starts, teacher_lps, n_chars, expected):
    got = align_teacher_logprobs(student_starts, teacher_starts, teacher_lps, n_chars=n_chars)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_opd_trainer_loss_equals_hand_computation_on_a_tiny_model(tiny_lm, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    from tasks.train.opd import _opd_trainer_class, opd_examples

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)
    rollouts = []
    for tid, prompt, completion in (("r1", "Compute 1 + 2.", "1+2=3."), ("r2", "Compute 4 - 1.", "4-1=3. ok")):
        ids = tok(completion, add_special_tokens=False)["input_ids"]
        n = len(ids)
        rollouts.append({"trace_id": tid, "prompt": prompt, "completion": completion, "token_ids": ids,
                         "student_logprobs": [-1.0] * n, "student_char_starts": list(range(n)),
                         "teacher_logprobs": [-0.2 * (i % 3) - (4.0 if i == 2 else 0.0) for i in range(n)],
                         "teacher_char_starts": list(range(n))})
    examples, rejected = opd_examples(rollouts, tok, clip=2.0, max_tokens=7)
    assert rejected == [] and [len(e["completion_ids"]) for e in examples] == [6, 7] and examples[1]["is_truncated"]
    assert examples[0]["advantages"][2] == pytest.approx(-2.0)  # -4.4 - (-1.0) = -3.4, clipped to -2
    trainer = _opd_trainer_class()(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                                                       remove_unused_columns=False),
                                   train_dataset=Dataset.from_list([{k: e[k] for k in ("prompt_ids", "completion_ids", "advantages")}
                                                                    for e in examples]),
                                   data_collator=lambda b: collate_opd(b, tok.pad_token_id))
    batch = collate_opd(examples, tok.pad_token_id)
    with torch.no_grad():
        got = float(trainer.compute_loss(model, batch))
    total, n = 0.0, 0
    for e in examples:
        lps = _completion_logprobs(model, e["prompt_ids"], e["completion_ids"])
        total += sum(a * lp for a, lp in zip(e["advantages"], lps))
        n += len(lps)
    assert n == 13 and math.isfinite(got)
    assert got == pytest.approx(-total / n, rel=1e-4)


def test_opd_prompt_is_the_recorded_context_the_student_sampled_from(tiny_lm):
    from transformers import AutoTokenizer

    from tasks.train.opd import opd_examples

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    base = {"trace_id": "r1", "prompt": "Compute 1 + 2.", "completion": "3", "token_ids": tok("3", add_special_tokens=False)["input_ids"],
            "student_logprobs": [-1.0], "student_char_starts": [0], "teacher_logprobs": [-0.5], "teacher_char_starts": [0]}
    recorded = "Be brief.\n<|user|>Compute 1 + 2.<|end|><|assistant|>"
    (with_ctx, without), _ = opd_examples([{**base, "prompt_context_text": recorded, "is_chat_prompt": True}, base], tok,
                                          clip=2.0, max_tokens=8)
    assert with_ctx["prompt_ids"] == tok(recorded, add_special_tokens=False)["input_ids"]
    assert tok.decode(without["prompt_ids"]) == "<|user|>Compute 1 + 2.<|end|><|assistant|>"  # no record: the student's template
    assert with_ctx["advantages"] == pytest.approx([0.5])
