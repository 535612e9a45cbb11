-- Cached embeddings of one model for the text hashes asked.
select text_hash, any_value(embedding) as embedding
from raw.raw_embeddings
where model_id = $model_id and text_hash in (select unnest($hashes::varchar[]))
group by text_hash
