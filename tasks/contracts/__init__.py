"""Data contracts: great-expectations suites (files under `suites/`) run at stage boundaries."""

from tasks.contracts.run import publish_artifact, record_results, run_contracts
from tasks.contracts.runner import ContractResult, ContractViolation, ExpectationOutcome, validate_frame
from tasks.contracts.suites import ContractError, Suite, all_suites, load_suite

__all__ = [
    "ContractError", "ContractResult", "ContractViolation", "ExpectationOutcome", "Suite", "all_suites",
    "load_suite", "publish_artifact", "record_results", "run_contracts", "validate_frame",
]
