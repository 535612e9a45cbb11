-- prompts without a reference answer whose current group of traces has no recorded vote for this version
-- params: those of routed_traces.sql
with routed as (
    {routed_traces}
),
voted as (
    select * from routed where verifier = 'majority_vote'
),
groups as (
    select
        prompt_id,
        count(*) as n_traces,
        md5(string_agg(input_hash, ',' order by trace_id)) as group_hash
    from voted
    group by prompt_id
)
select g.prompt_id, g.n_traces, g.group_hash as input_hash
from groups g
where not exists (
    select 1 from raw.raw_prompt_agreement a
    where a.prompt_id = g.prompt_id and a.verifier_version = $vote_version and a.input_hash = g.group_hash
)
order by g.prompt_id
