"""The command line answers instantly and imports nothing heavy to do so."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_every_verb_without_importing_heavy_libraries():
    code = (
        "import sys; from minescan.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'rasterio', 'ee', 'geopandas', 'xarray') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for verb in ("scan", "map", "reduce", "run-local", "demo", "synth", "train", "evaluate", "acquire", "bench"):
        assert f"  {verb} " in out
    assert "HEAVY []" in out


def test_version():
    out = subprocess.run([sys.executable, "-m", "minescan", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "minescan, version" in out.stdout


def _leaf_commands():
    import click
    from minescan.cli.main import COMMANDS, cli

    ctx = click.Context(cli)

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    for name in COMMANDS:
        yield from walk(cli.get_command(ctx, name), [name])


def test_every_verb_has_an_example_and_takes_v_and_q_after_the_verb():
    leaves = dict(_leaf_commands())
    assert len(leaves) >= 17
    for path, command in leaves.items():
        assert "Example:" in (command.help or ""), f"`minescan {path} --help` has no example"
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        assert {"-v", "-q"} <= names, path


def test_v_and_q_after_the_verb_change_the_log_level(tmp_path, capsys):
    import logging

    from tests.helpers import run_cli

    assert run_cli(["reduce", "--run", tmp_path / "nope", "-q"]) == 3
    assert logging.getLogger("minescan").level == logging.WARNING
    assert run_cli(["reduce", "--run", tmp_path / "nope", "-vv"]) == 3
    assert logging.getLogger("minescan").level == logging.DEBUG


def test_a_config_with_several_mistakes_reports_all_of_them(tmp_path, capsys):
    from tests.helpers import run_cli

    config = tmp_path / "run.yaml"
    config.write_text("threshold: 2\nmemory_budget_mb: 1\nno_such_setting: 3\n")
    assert run_cli(["scan", tmp_path / "s.tif", "--out", tmp_path / "o", "--config", config]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "at threshold:" in line and "at memory_budget_mb:" in line and "at no_such_setting:" in line
    assert "(3 mistakes)" in line


def test_a_malformed_value_is_a_usage_error(capsys):
    from tests.helpers import run_cli

    code = run_cli(["acquire", "scenes", "--aoi", "x.geojson", "--start", "2018-13-01", "--end", "2020-01-01",
                    "--bucket", "gs://b/x", "--dry-run"])
    assert code == 2
    assert "'2018-13-01' is not a date" in capsys.readouterr().err


def test_in_a_pod_the_error_line_and_a_bug_traceback_are_json(tmp_path):
    import json

    bad = subprocess.run([sys.executable, "-m", "minescan", "--log-format", "json", "reduce", "--run",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    entry = json.loads(bad.stderr.strip().splitlines()[-1])
    assert bad.returncode == 3 and entry["severity"] == "ERROR" and entry["exit_code"] == 3
    assert "is not a minescan run" in entry["message"]
    bug = (
        "import sys; import minescan.batch.runner as r\n"
        "def boom(*a, **k): raise RuntimeError('a planted bug')\n"
        "r.reduce_run = boom\n"
        "from minescan.cli import main\n"
        "main(['--log-format', 'json', 'reduce', '--run', sys.argv[1]])\n"
    )
    crashed = subprocess.run([sys.executable, "-c", bug, str(tmp_path)], capture_output=True, text=True, timeout=120)
    lines = crashed.stderr.strip().splitlines()
    assert crashed.returncode == 1 and len(lines) == 1
    entry = json.loads(lines[0])
    assert "a planted bug" in entry["message"] and "Traceback" in entry["exception"]


def test_log_lines_print_above_a_progress_bar_not_through_it():
    """Under a real terminal (a pty), a line logged while a bar is live gets its own line."""
    import os
    import pty
    import re

    script = (
        "import logging, time\n"
        "from minescan.log import progress, setup_logging\n"
        "setup_logging('auto')\n"
        "log = logging.getLogger('minescan.test')\n"
        "for i in progress(range(3), 3, 'work'):\n"
        "    time.sleep(0.2); log.info('inside %d', i)\n"
        "log.info('after the bar')\n"
    )
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", script])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    lines = [ln.strip("\r ") for ln in re.split(r"[\r\n]+", text)]
    for message in ("inside 0", "inside 1", "inside 2", "after the bar"):
        assert any(re.fullmatch(rf"\d\d:\d\d:\d\d INFO {message}", ln) for ln in lines), (message, lines)
