"""The DuckDB warehouse: migrations, views and the one connection helper."""

from warehouse.db import (
    MigrationError,
    Warehouse,
    WarehouseBusyError,
    WarehouseError,
    default_path,
    one_connection,
)

__all__ = ["MigrationError", "Warehouse", "WarehouseBusyError", "WarehouseError", "default_path", "one_connection"]
