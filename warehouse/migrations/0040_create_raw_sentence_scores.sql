-- Sentence-level teacher-forced scores (docs/methods.md#sentence-probability): one model's mean token log-prob per
-- sentence of a trace. Offsets are [char_start, char_end) into raw.raw_traces.completion_text;
-- `splitter` is the splitter's version + settings, so a changed splitter never mixes with old rows.
create table raw.raw_sentence_scores (
    trace_id varchar not null,
    sentence_index integer not null,    -- 0-based, in text order
    char_start integer not null,
    char_end integer not null,
    model_id varchar not null,          -- the scoring model (teacher = the trace's own model_id)
    n_tokens integer not null,          -- tokens of this model whose first non-space char is in the sentence
    mean_logprob double,                -- null when n_tokens = 0
    splitter varchar not null,          -- e.g. sent-v1:reasoning:1
    scored_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_sentence_scores is 'one row per (trace_id, model_id, splitter, sentence_index); append-only';
