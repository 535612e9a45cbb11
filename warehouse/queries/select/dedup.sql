-- One row per trace: representative only when the trace AND its prompt are representatives under
-- every dedup method that judged them. Needs staging.stg_dedup.
with judged as (
    select t.trace_id, d.is_representative
    from staging.stg_traces t join staging.stg_dedup d on d.item_kind = 'trace' and d.item_id = t.trace_id
    union all
    select t.trace_id, d.is_representative
    from staging.stg_traces t join staging.stg_dedup d on d.item_kind = 'prompt' and d.item_id = t.prompt_id
)
select trace_id, bool_and(is_representative) as is_representative
from judged
group by trace_id
