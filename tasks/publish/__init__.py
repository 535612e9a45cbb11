"""Dataset versions, per-dataset views, export with a dataset card, and lineage.

Tables: `curated.cur_datasets` (one row per version) and `curated.cur_dataset_rows` (one row per
trace of a version), migration 0050. Views from files: `curated.cur_traces`,
`curated.cur_dataset_rows_latest`, `curated.cur_dataset_rows_detail`. Views created by
`publish_dataset` when a dataset is first published (their names come from the data, so they are
not files under warehouse/views/): `curated.cur_sft_<name>` (latest version, chat `messages`) and
`curated.cur_redi_pairs_<name>` (when the version has `positive` and `negative` rows), `<name>` =
the dataset name with `-` and `.` replaced by `_`. The lineage query is `warehouse/queries/lineage.sql`.
"""

from tasks.publish.export import export_dataset
from tasks.publish.lineage import lineage
from tasks.publish.sql import DatasetNameError, redi_view_name, sft_rows_sql, sft_view_name
from tasks.publish.versions import (
    DatasetVersion,
    PublishError,
    content_hash,
    list_versions,
    parse_spec,
    publish_dataset,
    resolve_version,
    verify_version,
)

__all__ = [
    "DatasetNameError", "DatasetVersion", "PublishError", "content_hash", "export_dataset", "lineage",
    "list_versions", "parse_spec", "publish_dataset", "redi_view_name", "resolve_version", "sft_rows_sql",
    "sft_view_name", "verify_version",
]
