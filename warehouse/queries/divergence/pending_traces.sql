-- Teacher traces still missing teacher or student sentence scores for the splitter $splitter, one row per trace.
-- Parameters: $student (student model id), $teacher (only this teacher; null = all), $prompt_split (null = all),
-- $splitter, $limit (null = no limit).
with tokens as (
    select distinct trace_id, model_id from raw.raw_token_logprobs
),
sentences as (
    select distinct trace_id, model_id from raw.raw_sentence_scores where splitter = $splitter
),
candidates as (
    select
        t.trace_id, t.model_id, p.problem_text, t.completion_text,
        t.prompt_context_text, t.prompt_messages_json, t.is_chat_prompt, t.sampling_json,
        exists (select 1 from tokens k where k.trace_id = t.trace_id and k.model_id = t.model_id) as has_teacher_tokens,
        exists (select 1 from tokens k where k.trace_id = t.trace_id and k.model_id = $student) as has_student_tokens,
        exists (select 1 from sentences s where s.trace_id = t.trace_id and s.model_id = t.model_id) as has_teacher_sentences,
        exists (select 1 from sentences s where s.trace_id = t.trace_id and s.model_id = $student) as has_student_sentences
    from staging.stg_traces t
    left join staging.stg_prompts p on p.prompt_id = t.prompt_id
    where t.model_id <> $student
        and ($teacher::varchar is null or t.model_id = $teacher)
        and ($prompt_split::varchar is null or p.split = $prompt_split)
)
select *
from candidates
where not (has_teacher_sentences and has_student_sentences)
order by trace_id
limit $limit
