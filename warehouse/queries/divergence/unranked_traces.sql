-- Traces whose latest teacher-forced scoring row under the student $student carries no token ranks
-- (scored before migration 0160 stored them): what `divergence rescore_ranks=true` scores again so
-- that the rank-surprisal ratio (policy rsr) can read them. Same columns as pending_traces' scoring input.
with latest as (
    select trace_id, ranks
    from raw.raw_token_logprobs
    where model_id = $student and logprob_source = 'teacher_forced'
    qualify row_number() over (partition by trace_id order by created_at desc) = 1
)
select
    t.trace_id, t.model_id, p.problem_text, t.completion_text,
    t.prompt_context_text, t.prompt_messages_json, t.is_chat_prompt, t.sampling_json
from latest l
join staging.stg_traces t on t.trace_id = l.trace_id
left join staging.stg_prompts p on p.prompt_id = t.prompt_id
where l.ranks is null
    and ($prompt_split::varchar is null or p.split = $prompt_split)
order by t.trace_id
limit $limit
