-- Lineage of one trace: `potstill lineage TRACE_ID`, or run it directly in DuckDB with
--   set variable trace_id = 't_...';   (and replace $trace_id by getvariable('trace_id'))
-- Grain: one row (for the trace asked), nested: every fact is a struct or a list of structs.
--   prompt            its source, file:line and ingest run
--   trace             teacher model (name@revision), origin, sampling parameters, finish, tokens
--   generation_run    the run that wrote the trace (generation or import)
--   verifications     each verifier, version, verdict, score and extracted answer
--   dedup             the cluster of the trace and of its prompt under each method
--   contamination     benchmarks its prompt was checked against (contaminated or not)
--   scores            every quality metric (latest per metric) with its scorer version
--   datasets          every dataset version containing it: policy, params, rank, stage, status
--   training_runs     the fine-tuning runs that used those versions
with trace as (
    select * from staging.stg_traces where trace_id = $trace_id
),
prompt as (
    select p.* from staging.stg_prompts p join trace t on p.prompt_id = t.prompt_id
),
runs as (
    select run_id, flow_name, stage, status, config_fingerprint, started_at, finished_at from meta.runs
),
verifications as (
    select list({
        'verifier': v.verifier, 'verifier_version': v.verifier_version, 'verdict_status': v.verdict_status,
        'verdict_reason': v.verdict_reason, 'score': v.score, 'extracted_answer': v.extracted_answer,
        'verified_at': v.verified_at, 'run_id': v.run_id
    } order by v.verified_at, v.verifier) as verifications
    from raw.raw_verifications v join trace t on v.trace_id = t.trace_id
),
dedup as (
    select list({
        'item_kind': d.item_kind, 'item_id': d.item_id, 'method': d.method, 'cluster_id': d.cluster_id,
        'is_representative': d.is_representative, 'similarity': d.similarity, 'run_id': d.run_id
    } order by d.item_kind desc, d.method) as dedup
    from staging.stg_dedup d join trace t
        on (d.item_kind = 'trace' and d.item_id = t.trace_id) or (d.item_kind = 'prompt' and d.item_id = t.prompt_id)
),
contamination as (
    select list({
        'benchmark_name': c.benchmark_name, 'is_contaminated': c.is_contaminated,
        'benchmark_item_id': c.benchmark_item_id, 'match_kind': c.match_kind, 'overlap_ratio': c.overlap_ratio,
        'run_id': c.run_id
    } order by c.benchmark_name) as contamination
    from staging.stg_contamination c join trace t on c.prompt_id = t.prompt_id
),
scores as (
    select list({
        'metric': s.metric, 'score': s.score, 'scorer': s.scorer, 'scorer_version': s.scorer_version,
        'run_id': s.run_id
    } order by s.metric) as scores
    from staging.stg_scores s join trace t on s.trace_id = t.trace_id
),
datasets as (
    select list({
        'dataset_name': d.dataset_name, 'version': d.version, 'status': d.status, 'policy': d.policy,
        'params_json': d.params_json, 'config_fingerprint': d.config_fingerprint, 'content_hash': d.content_hash,
        'rank': r.rank, 'stage': r.stage, 'source_run_ids': d.source_run_ids, 'published_at': d.published_at
    } order by d.dataset_name, d.version) as datasets
    from curated.cur_dataset_rows r
    join curated.cur_datasets d using (dataset_name, version)
    join trace t on r.trace_id = t.trace_id
),
training_runs as (
    select list({
        'training_run_id': tr.training_run_id, 'dataset_name': tr.dataset_name,
        'dataset_version': tr.dataset_version, 'base_model': tr.base_model,
        'recipe_fingerprint': tr.recipe_fingerprint, 'checkpoint_path': tr.checkpoint_path,
        'status': tr.status, 'final_loss': tr.final_loss, 'started_at': tr.started_at
    } order by tr.started_at, tr.training_run_id) as training_runs
    from meta.training_runs tr
    where exists (
        select 1 from curated.cur_dataset_rows r join trace t on r.trace_id = t.trace_id
        where r.dataset_name = tr.dataset_name and r.version = tr.dataset_version
    )
)
select
    t.trace_id,
    {
        'prompt_id': p.prompt_id, 'source': p.source, 'source_ref': p.source_ref, 'domain': p.domain,
        'split': p.split, 'reference_answer': p.reference_answer, 'ingested_at': p.ingested_at,
        'ingest_run_id': p.run_id, 'ingest_flow': ir.flow_name, 'ingest_config_fingerprint': ir.config_fingerprint
    } as prompt,
    {
        'model_id': t.model_id, 'origin': t.origin, 'sample_index': t.sample_index,
        'temperature': t.temperature, 'top_p': t.top_p, 'max_tokens': t.max_tokens, 'seed': t.seed,
        'sampling_json': t.sampling_json, 'finish_reason': t.finish_reason, 'is_truncated': t.is_truncated,
        'n_prompt_tokens': t.n_prompt_tokens, 'n_completion_tokens': t.n_completion_tokens,
        'source_ref': t.source_ref, 'created_at': t.created_at
    } as trace,
    {
        'run_id': t.run_id, 'flow_name': gr.flow_name, 'stage': gr.stage, 'status': gr.status,
        'config_fingerprint': gr.config_fingerprint, 'started_at': gr.started_at
    } as generation_run,
    coalesce(v.verifications, []) as verifications,
    coalesce(dd.dedup, []) as dedup,
    coalesce(c.contamination, []) as contamination,
    coalesce(s.scores, []) as scores,
    coalesce(d.datasets, []) as datasets,
    coalesce(tr.training_runs, []) as training_runs
from trace t
left join prompt p on true
left join runs ir on ir.run_id = p.run_id
left join runs gr on gr.run_id = t.run_id
cross join verifications v
cross join dedup dd
cross join contamination c
cross join scores s
cross join datasets d
cross join training_runs tr
