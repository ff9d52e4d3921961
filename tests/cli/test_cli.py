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
