"""A real local Prefect server: deploy prefect.yaml unchanged, start a run exactly as the UI's Run
button does (POST /deployments/{id}/create_flow_run), let the worker run it, check the warehouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SMALL_RECIPE = """
name: e2e
version: 1
inputs:
  prompts:
    - path: {train}
      source: e2e
stages:
  generate:
    limit: 12
  select:
    budget: 8
skip: [finetune, evaluate]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent), "POTSTILL_SERVER_DIR": str(tmp_path / "srv"),
           "POTSTILL_SERVER_PORT": str(port), "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    subprocess.run(["bash", "deployments/server.sh", "start"], cwd=REPO, env=env, check=True, timeout=300)
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    try:
        yield env
    finally:
        subprocess.run(["bash", "deployments/server.sh", "stop"], check=False, cwd=REPO, env=env, timeout=60)


def test_ui_run_button_end_to_end(server, tmp_path):
    deploy = subprocess.run(["bash", "deployments/deploy.sh"], check=False, cwd=REPO, env=server, capture_output=True, text=True, timeout=600)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    recipe = tmp_path / "e2e.yaml"
    recipe.write_text(SMALL_RECIPE.format(train=REPO / "toyworld" / "data" / "train.jsonl"))
    warehouse = tmp_path / "e2e.duckdb"
    script = f"""
import asyncio, time
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        deployment = await client.read_deployment_by_name("curate/curate-manual")
        run = await client.create_flow_run_from_deployment(
            deployment.id, parameters={{"recipe": {str(recipe)!r}, "warehouse": {str(warehouse)!r}}})
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                print("STATE", run.state.type.value)
                return
            await asyncio.sleep(3)
        print("STATE timeout")

asyncio.run(main())
"""
    proc = subprocess.run([sys.executable, "-c", script], check=False, env=server, capture_output=True, text=True, timeout=1000)
    logs = "".join((Path(server["POTSTILL_SERVER_DIR"]) / f).read_text()[-3000:] for f in ("worker-cpu.log",))
    assert "STATE COMPLETED" in proc.stdout, proc.stdout + proc.stderr + logs
    from warehouse import Warehouse

    wh = Warehouse(warehouse, read_only=True)
    assert wh.scalar("select count(*) from raw.raw_prompts where source = 'e2e'") > 0
    assert wh.scalar("select count(*) from meta.runs where stage = 'curate' and status = 'completed'") == 1
    assert wh.scalar("select count(*) from raw.raw_traces") > 0
