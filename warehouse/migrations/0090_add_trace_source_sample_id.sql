-- Imported traces keep the id their dataset gave the sample (DASD-style `sample_uuid`), so a
-- separately released file of token log-probs can be joined to them later.
alter table raw.raw_traces add column source_sample_id varchar;
