"""Data contracts: great-expectations suites (files under `suites/`) and their validation.

Running a suite on warehouse rows is `warehouse.contracts.run_contracts`.
"""

from tasks.contracts.runner import ContractResult, ContractViolation, ExpectationOutcome, validate_frame
from tasks.contracts.suites import ContractError, Suite, all_suites, load_suite

__all__ = [
    "ContractError", "ContractResult", "ContractViolation", "ExpectationOutcome", "Suite", "all_suites",
    "load_suite", "validate_frame",
]
