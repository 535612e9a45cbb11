-- Sentence scores (under every model) of the traces model $model_id wrote on split $split, splitter $splitter;
-- one row per (trace, model, splitter, sentence), the latest.
select s.trace_id, s.sentence_index, s.splitter, s.model_id, s.mean_logprob
from raw.raw_sentence_scores s
join staging.stg_traces t on t.trace_id = s.trace_id
join staging.stg_prompts p on p.prompt_id = t.prompt_id
where t.model_id = $model_id and p.split = $split and s.splitter = $splitter
qualify row_number() over (partition by s.trace_id, s.model_id, s.splitter, s.sentence_index order by s.scored_at desc) = 1
