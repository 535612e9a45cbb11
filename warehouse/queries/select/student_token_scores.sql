-- One row per trace scored by the student $student: GRAPE's mean student log-prob over the completion
-- tokens, and the rank-surprisal ratio sum(min(rank, 100)) / sum(-log p) (arXiv 2601.14249; ranks are
-- stored clipped at 100; null when the row has no ranks or no surprisal). The latest scoring row wins.
with scored as (
    select trace_id, logprobs, ranks
    from raw.raw_token_logprobs
    where model_id = $student and len(logprobs) > 0
    qualify row_number() over (partition by trace_id order by created_at desc) = 1
)
select
    trace_id,
    list_avg(logprobs) as student_mean_logprob,
    case when ranks is not null and -list_sum(logprobs) > 0
        then list_sum(list_transform(ranks, lambda r: least(r, 100))) / -list_sum(logprobs) end as rsr
from scored
