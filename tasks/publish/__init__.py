"""Dataset versions (the record and its content hash), per-dataset view SQL and the dataset card.

Tables: `curated.cur_datasets` (one row per version) and `curated.cur_dataset_rows` (one row per
trace of a version), migration 0050. Views from files: `curated.cur_traces`,
`curated.cur_dataset_rows_latest`, `curated.cur_dataset_rows_detail`. Views created by
`warehouse.datasets.publish_dataset` when a dataset is first published (their names come from the
data, so they are not files under warehouse/views/): `curated.cur_sft_<name>` (latest version, chat
`messages`) and `curated.cur_redi_pairs_<name>` (when the version has `positive` and `negative`
rows), `<name>` = the dataset name with `-` and `.` replaced by `_`. Export is `warehouse.export`,
lineage `warehouse.lineage` (the query `warehouse/queries/lineage.sql`).
"""

from tasks.publish.sql import DatasetNameError, redi_view_name, sft_rows_sql, sft_view_name
from tasks.publish.versions import DatasetVersion, PublishError, content_hash, parse_spec

__all__ = [
    "DatasetNameError", "DatasetVersion", "PublishError", "content_hash", "parse_spec", "redi_view_name",
    "sft_rows_sql", "sft_view_name",
]
