"""The `minescan` command line: one verb per module, each a thin layer over one library call.

`main` (the console entry point) and the lazy verb table live in `main.py`; the verbs'
modules import the library only inside their functions, so `minescan --help` is instant.
"""

from .main import cli, main

__all__ = ["cli", "main"]
