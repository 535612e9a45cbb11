-- The latest verdict of each verifier on each trace, one row per (trace, verifier).
select trace_id, verifier, verdict_status, score
from raw.raw_verifications
qualify row_number() over (partition by trace_id, verifier order by verified_at desc, run_id desc) = 1
