-- every trace with the verifier that judges it, that verifier's version and the hash of what it judges
-- params: $math_version, $code_version, $vote_version, $none_version
with traces as (
    select trace_id, prompt_id, completion_text, is_truncated from staging.stg_traces
),
prompts as (
    select prompt_id, domain, reference_answer, tests_json from staging.stg_prompts
),
routed as (
    select
        t.trace_id, t.prompt_id, t.completion_text, t.is_truncated,
        p.domain, p.reference_answer, p.tests_json,
        case
            when p.prompt_id is null then 'none'
            when p.domain = 'code' then 'code_sandbox'
            when p.domain = 'math' and nullif(trim(p.reference_answer), '') is not null then 'math_verify'
            when p.domain = 'math' then 'majority_vote'
            else 'none'
        end as verifier,
        case
            when p.prompt_id is null then 'prompt_missing'
            when p.domain not in ('math', 'code') then 'unsupported_domain'
        end as route_reason
    from traces t
    left join prompts p using (prompt_id)
),
versioned as (
    select
        *,
        case verifier
            when 'math_verify' then $math_version
            when 'code_sandbox' then $code_version
            when 'majority_vote' then $vote_version
            else $none_version
        end as verifier_version
    from routed
)
select
    *,
    md5(concat_ws(chr(31), verifier_version, coalesce(domain, ''), coalesce(reference_answer, ''),
        coalesce(tests_json, ''), completion_text, is_truncated::varchar)) as input_hash
from versioned
