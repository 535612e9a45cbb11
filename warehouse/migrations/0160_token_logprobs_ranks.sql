-- The scoring model's rank of each completion token (1 = its top choice), clipped at 100, written by the
-- teacher-forced scoring pass next to its log-probs; the rank-surprisal ratio (RSR) reads it.
-- Null for rows scored before this column existed and for sampled/imported log-probs (no full logits row).
alter table raw.raw_token_logprobs add column ranks integer[];
