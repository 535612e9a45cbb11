"""Dataset versions, per-dataset views, export with a dataset card, and lineage."""

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
