"""Lake maintenance flow: merge small files, expire snapshots no published dataset needs, report sizes.

Scheduled by the `lake-maintenance` deployment (deployments/prefect.yaml); `potstill maintain`
runs the same thing from the command line. The work is in `warehouse/maintenance.py`.
"""

from __future__ import annotations

from prefect import flow

from flows.common import in_flow
from warehouse import Warehouse
from warehouse.maintenance import maintain


@flow(name="lake-maintenance", log_prints=True)
def maintain_flow(warehouse: str | None = None, keep_days: float = 7.0) -> dict:
    """Merge small Parquet files, expire unreferenced snapshots older than `keep_days`, report sizes."""
    report = maintain(Warehouse(warehouse), keep_days=keep_days)
    summary = report.summary()
    if in_flow() and report.tables is not None:
        from prefect.artifacts import create_table_artifact

        create_table_artifact(key="lake-sizes", table=report.tables.to_dicts(),
                              description="files and bytes per table before and after maintenance")
    print(f"lake maintenance: files {summary['files_before']} -> {summary['files_after']}, "
          f"bytes {summary['bytes_before']} -> {summary['bytes_after']}, snapshots {summary['snapshots_before']} -> "
          f"{summary['snapshots_after']} (kept for datasets: {summary['kept_for_datasets']})")
    return summary
