-- Verdict breakdown per verifier over every trace's latest verdict.
with latest as (
    select * from staging.stg_verifications
)
select verifier, verdict_status, count(*) as n_traces
from latest
group by verifier, verdict_status
order by verifier, verdict_status;
