"""The training-method deployments through a real Prefect server: `deployments/server.sh` starts the server
and process workers for the cpu and gpu pools, `deployments/deploy.sh` registers deployments/prefect.yaml
unchanged, and a run of each of finetune/finetune-redi, finetune/finetune-schedule and
finetune/finetune-opd is created through the API exactly as the UI's Run button does
(POST /deployments/{id}/create_flow_run, custom parameters merged over the deployment's). The gpu pool's
worker runs them with the deployment's own recipe and method on the toy-world student and teacher-a;
the parameters the test sets are the dataset, the warehouse and small step bounds (max_steps,
second_stage_steps) so that the three runs fit a test. The warehouse must then hold every stage in
meta.training_runs with its method, stage, parent and steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
PROBLEMS = [(f"p{i}", f"Compute {i} + {i + 1}.", 2 * i + 1) for i in range(8)]
RUNS = {"finetune/finetune-redi": ("redi@1", "sft+redi", [("sft", None, 4), ("redi", "sft", 2)]),
        "finetune/finetune-schedule": ("sched@1", "schedule", [("low_temp", None, 2), ("high_temp", "low_temp", 2)]),
        "finetune/finetune-opd": ("single@1", "sft+opd", [("sft", None, 4), ("opd", "sft", 2)])}


def _seed(wh_path: Path) -> None:
    from flows.divergence import resolve_model_id
    from warehouse import Warehouse
    from warehouse.datasets import publish_dataset
    from warehouse.runs import utcnow

    wh, now = Warehouse(wh_path), utcnow()
    teacher = resolve_model_id(str(REPO / "toyworld" / "models" / "teacher-a"))
    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": pid, "source": "e2e", "domain": "math", "problem_text": text, "reference_answer": str(ans), "split": "train",
         "ingested_at": now, "run_id": "seed"} for pid, text, ans in PROBLEMS]), key=["prompt_id"])
    traces = []
    for pid, text, ans in PROBLEMS:
        for kind, a, temp in (("w", ans, 0.6), ("h", ans, 1.0), ("l", ans + 1, 1.0)):
            steps = f"{text[8:-1]} = {a}."
            traces.append({"trace_id": f"{kind}_{pid}", "prompt_id": pid, "model_id": teacher, "origin": "generated", "sample_index": 0,
                           "completion_text": f"<think>\n{steps}\n</think>\n\n\\boxed{{{a}}}", "reasoning_text": steps,
                           "answer_text": f"\\boxed{{{a}}}", "is_truncated": False, "n_completion_tokens": 16, "temperature": temp,
                           "created_at": now, "run_id": "seed"})
    wh.load("raw.raw_traces", pl.DataFrame(traces), key=["trace_id"])

    def publish(name, policy, rows):
        publish_dataset(wh, name, pl.DataFrame(rows, schema={"trace_id": pl.String, "rank": pl.Int32, "stage": pl.String},
                                               orient="row"), policy, {}, None, [])

    publish("redi", "redi_pairs", [r for i, (pid, _, _) in enumerate(PROBLEMS)
                                   for r in ((f"w_{pid}", i + 1, "positive"), (f"l_{pid}", i + 1, "negative"))])
    publish("sched", "temperature_schedule", [(f"w_{pid}", i + 1, "low_temp") for i, (pid, _, _) in enumerate(PROBLEMS)]
            + [(f"h_{pid}", 9 + i, "high_temp") for i, (pid, _, _) in enumerate(PROBLEMS)])
    publish("single", "random", [(f"w_{pid}", i + 1, "main") for i, (pid, _, _) in enumerate(PROBLEMS)])


@pytest.fixture
def server(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "orchestration"))
    from test_server_e2e import _free_port

    port = _free_port()
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent), "POTSTILL_SERVER_DIR": str(tmp_path / "srv"),
           "POTSTILL_SERVER_PORT": str(port), "PREFECT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    env.pop("PREFECT_API_URL", None)
    subprocess.run(["bash", "deployments/server.sh", "start"], cwd=REPO, env=env, check=True, timeout=300)
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    try:
        yield env
    finally:
        subprocess.run(["bash", "deployments/server.sh", "stop"], check=False, cwd=REPO, env=env, timeout=60)


def test_each_method_deployment_runs_from_the_api_like_the_ui(server, tmp_path):
    warehouse = tmp_path / "methods.duckdb"
    _seed(warehouse)
    deploy = subprocess.run(["bash", "deployments/deploy.sh"], check=False, cwd=REPO, env=server, capture_output=True, text=True, timeout=600)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    runs = {name: {"dataset": ds, "warehouse": str(warehouse), "max_steps": 4, "second_stage_steps": 2} for name, (ds, _, _) in RUNS.items()}
    script = f"""
import asyncio, json, time
from prefect.client.orchestration import get_client

async def main():
    states = {{}}
    async with get_client() as client:
        created = {{}}
        for name, params in {json.dumps(runs)}.items():
            deployment = await client.read_deployment_by_name(name)
            created[name] = await client.create_flow_run_from_deployment(deployment.id, parameters=params)
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline and len(states) < len(created):
            for name, run in created.items():
                run = await client.read_flow_run(run.id)
                if run.state and run.state.is_final():
                    states[name] = [run.state.type.value, run.parameters.get("method"), run.parameters.get("recipe")]
            await asyncio.sleep(3)
    print("STATES", json.dumps(states))

asyncio.run(main())
"""
    proc = subprocess.run([sys.executable, "-c", script], check=False, env=server, capture_output=True, text=True, timeout=2000)
    logs = (Path(server["POTSTILL_SERVER_DIR"]) / "worker-gpu.log").read_text()[-4000:]
    line = next((x for x in proc.stdout.splitlines() if x.startswith("STATES ")), None)
    assert line, proc.stdout + proc.stderr + logs
    states = json.loads(line[len("STATES "):])
    assert {n: s[0] for n, s in states.items()} == dict.fromkeys(RUNS, "COMPLETED"), json.dumps(states) + logs
    for name, (_, method, _) in RUNS.items():  # the deployment's own method and recipe reached the run
        assert states[name][1] == method and states[name][2].startswith("deployments/recipes/train_")

    from warehouse import Warehouse

    wh = Warehouse(warehouse, read_only=True)
    for name, (ds, method, stages) in RUNS.items():
        rows = wh.query("select training_run_id, stage, parent_training_run_id, n_steps, max_steps, status, checkpoint_path "
                        "from meta.training_runs where method = ? and dataset_name = ? order by started_at", [method, ds.split("@")[0]])
        assert rows["stage"].to_list() == [s for s, _, _ in stages], (name, rows)
        assert set(rows["status"]) == {"completed"} and rows["n_steps"].to_list() == [n for _, _, n in stages]
        ids = dict(zip(rows["stage"], rows["training_run_id"]))
        assert [ids.get(p) if p else None for _, p, _ in stages] == rows["parent_training_run_id"].to_list()
        assert all(Path(p).is_dir() for p in rows["checkpoint_path"])
    # the OPD stage sampled the SFT student and trained on its rollouts scored by teacher-a
    assert wh.scalar("select count(*) from staging.stg_traces where model_id like 'sft-tr_%'") == len(PROBLEMS)
