-- One row per trace: its verdict over all verifiers. correct only when every verifier says correct;
-- incorrect when any says incorrect (REDI: a negative fails any verifier); otherwise the
-- non-decisive status (unverifiable | timeout | error). Needs staging.stg_verifications.
select
    trace_id,
    case
        when bool_or(verdict_status = 'incorrect') then 'incorrect'
        when bool_and(verdict_status = 'correct') then 'correct'
        else min(verdict_status) filter (where verdict_status <> 'correct')
    end as verdict_status
from staging.stg_verifications
group by trace_id
