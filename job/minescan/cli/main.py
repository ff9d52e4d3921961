"""The `minescan` command line: a thin layer that parses, calls one library function, reports.

Verbs are loaded lazily from the table below, so `minescan --help` never imports
TensorFlow, rasterio or Earth Engine. Errors a user can cause are printed as one line and
mapped to the exit codes in `minescan.errors`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import EXIT_INTERNAL, MinescanError

#: verb → ("module:attribute", one-line help shown by `minescan --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("minescan.cli.scan:scan", "Scan one GeoTIFF scene for mines and tailings dams."),
    "map": ("minescan.cli.run:map_cmd", "Scan one scene of a manifest into a run (one pod)."),
    "reduce": ("minescan.cli.run:reduce_cmd", "Merge a run's scene shards into national sites."),
    "run-local": ("minescan.cli.run:run_local_cmd", "Map every scene in local processes, then reduce."),
    "diff": ("minescan.cli.sites:diff", "Sites new, grown, shrunk or vanished between two runs."),
    "demo": ("minescan.cli.demo:demo", "Run the whole pipeline on a synthetic area, no cloud."),
    "synth": ("minescan.cli.synth:synth", "Make synthetic Sentinel-2 scenes and chips, or Landsat series."),
    "models": ("minescan.cli.models:models", "Build, inspect and verify model directories."),
    "bench": ("minescan.cli.bench:bench", "Benchmark the scan on a paper-sized scene."),
    "bench-reduce": ("minescan.cli.sites:bench_reduce", "Benchmark the reduce of a national run (synthetic shards)."),
    "train": ("minescan.training.cli:train", "Train the discovery or impact network."),
    "evaluate": ("minescan.training.cli:evaluate", "Evaluate a model on a held-out set."),
    "acquire": ("minescan.acquire.cli:acquire", "Export Sentinel-2 scenes and chips with Earth Engine."),
    "series": ("minescan.cli.series:series", "MapBiomas mining series: cube, U-Net, filters, hectares."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in COMMANDS:
            return None
        target, short_help = COMMANDS[name]
        if ctx.resilient_parsing or _listing_help(ctx):
            return click.Command(name, short_help=short_help, help=short_help)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        command.name = name
        _add_verbosity_options(command)
        return command


def _adjust_verbosity(ctx: click.Context, param: click.Parameter, value: int | bool) -> None:
    from ..log import set_verbosity, verbosity

    if value:
        set_verbosity(verbosity() + (value if param.name == "verbose_after" else -1))


def _add_verbosity_options(command: click.Command) -> None:
    """`-v`/`-q` after the verb too (`minescan scan -v ...`), on every verb and sub-verb."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_verbosity_options(sub)
    if any(p.name == "verbose_after" for p in command.params):
        return
    command.params += [
        click.Option(["-v", "--verbose", "verbose_after"], count=True, expose_value=False,
                     callback=_adjust_verbosity, help="More log detail (repeatable)."),
        click.Option(["-q", "--quiet", "quiet_after"], is_flag=True, expose_value=False,
                     callback=_adjust_verbosity, help="Warnings and errors only."),
    ]


def _listing_help(ctx: click.Context) -> bool:
    """True while click only formats the group's help (no sub-command was chosen)."""
    return ctx.invoked_subcommand is None and any(a in ("--help", "-h") for a in sys.argv[1:2])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="minescan")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "json"]),
    default="auto",
    show_default=True,
    help="auto: progress bars on a terminal, JSON lines in a pod or pipe.",
)
@click.option("-v", "--verbose", count=True, help="More log detail (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only.")
def cli(log_format: str, verbose: int, quiet: bool) -> None:
    """minescan: find surface mines and tailings dams in Sentinel-2 imagery.

    Exit codes: 0 ok, 2 usage, 3 bad input, 4 bad model, 5 run conflict,
    75 transient (retry), 1 internal error.
    """
    from ..log import setup_logging

    setup_logging(log_format, verbose - int(quiet))


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="minescan", standalone_mode=False)
    except MinescanError as exc:
        _fail(str(exc), exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        if _json():
            _fail(exc.format_message(), exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from ..errors import from_os_error

        fault = from_os_error(exc)
        if fault is not None:
            _fail(str(fault), fault.exit_code)
        import traceback

        if _json():
            _fail(f"internal error (a bug): {type(exc).__name__}: {exc}", EXIT_INTERNAL,
                  traceback.format_exc())
        traceback.print_exc()
        click.echo("minescan: internal error (a bug): please report the traceback above", err=True)
        sys.exit(EXIT_INTERNAL)


def _json() -> bool:
    from ..log import json_logs

    return json_logs()


def _fail(message: str, code: int, trace: str | None = None) -> None:
    """The one error line: text on a terminal, a JSON object in a pod (Cloud Logging keeps
    each line as one entry, a traceback included)."""
    if _json():
        import json
        import time

        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "severity": "ERROR",
                 "logger": "minescan", "message": f"minescan: error: {message}", "exit_code": code}
        if trace:
            entry["exception"] = trace
        click.echo(json.dumps(entry), err=True)
    else:
        click.echo(f"minescan: error: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
