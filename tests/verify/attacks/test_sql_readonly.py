"""`potstill sql` is read-only in fact: no writes, no ATTACH/COPY/INSTALL/LOAD, no file reads unless asked."""

from __future__ import annotations

import pytest

from flows.cli import CliError, _safe_text, read_only_query


@pytest.fixture
def warehouse_file(wh, wh_path):
    wh.migrate()
    return str(wh_path)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("copy raw.raw_prompts to '{tmp}/out.csv'", "COPY statements are refused"),
        ("attach '{tmp}/other.duckdb' as o", "ATTACH statements are refused"),
        ("install httpfs", "statements are refused"),
        ("load httpfs", "LOAD statements are refused"),
        ("set enable_external_access = true", "SET statements are refused"),
        ("select 1; drop table raw.raw_prompts", "DROP statements are refused"),
        ("export database '{tmp}/dump'", "EXPORT statements are refused"),
        ("select * from read_text('/etc/shadow')", "--allow-file-reads"),
        ("select * from read_csv('/etc/passwd')", "--allow-file-reads"),
        ("select * from glob('/*')", "--allow-file-reads"),
    ],
)
def test_refused_with_one_line(warehouse_file, tmp_path, query, message):
    with pytest.raises(CliError, match=message.replace("-", r"\-")) as err:
        read_only_query(warehouse_file, query.format(tmp=tmp_path))
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "warehouse.duckdb"] or all(
        p.name.startswith("warehouse.duckdb") for p in tmp_path.iterdir())


def test_selects_work_and_the_warehouse_is_unchanged(warehouse_file, wh):
    before = wh.scalar("select count(*) from information_schema.tables")
    assert read_only_query(warehouse_file, "select count(*) as n from raw.raw_prompts")["n"].to_list() == [0]
    assert read_only_query(warehouse_file, "pragma database_list").height >= 1
    assert wh.scalar("select count(*) from information_schema.tables") == before


def test_file_reads_need_the_opt_in_and_still_no_writes(warehouse_file, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n2\n")
    assert read_only_query(warehouse_file, f"select sum(a) as s from read_csv('{data}')", allow_file_reads=True)["s"][0] == 3
    with pytest.raises(CliError, match="COPY statements are refused"):
        read_only_query(warehouse_file, f"copy (select 1) to '{tmp_path}/x.csv'", allow_file_reads=True)
    assert not (tmp_path / "x.csv").exists()


def test_terminal_text_is_escaped():
    assert _safe_text("red\x1b[31m") == "red\\x1b[31m"
    assert _safe_text("plain [/x] text") == "plain [/x] text"


def test_cli_error_with_markup_and_escapes_is_one_clean_line(warehouse_file):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", "from flows.cli import main; main()", "--warehouse", warehouse_file, "sql",
         "select * from \"[/x]\x1b[31m\""],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "\x1b" not in done.stderr and "Traceback" not in done.stderr and "[/x]" in done.stderr
