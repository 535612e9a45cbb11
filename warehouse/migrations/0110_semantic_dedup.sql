-- Semantic dedup (tasks/dedup/semantic.py): decontamination rows say which method flagged them,
-- and sentence embeddings are cached per (text hash, model) so a re-run embeds only new texts.
alter table raw.raw_contamination add column if not exists method varchar default 'ngram'; -- ngram (n-gram or formula) | embedding
alter table raw.raw_contamination add column if not exists similarity double;              -- embedding: cosine to the benchmark item

create table if not exists raw.raw_embeddings (
    text_hash varchar not null,         -- sha256 prefix of the normalised text that was embedded (tasks/dedup/semantic.embed_key)
    model_id varchar not null,          -- model name @ digest of its config files
    n_dims integer not null,
    embedding float[] not null,         -- L2-normalised
    created_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_embeddings is 'one row per (text_hash, model_id): a cached sentence embedding; append-only';
