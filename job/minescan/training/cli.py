"""`minescan train discovery|impact|bench` and `minescan evaluate`: parse, call, report.

The environment (TF_CONFIG, JOB_COMPLETION_INDEX) is read here and nowhere else.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..bands import DEFAULT_BANDS, check_bands

IMPACTS = ["high", "low", "no_ore"]


def _bands(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return check_bands([b.strip() for b in value.split(",") if b.strip()])
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _grouped(name: str, build: Callable[..., Any], options: list[Any]) -> Callable[..., Any]:
    """Decorate a command with `options` and hand it their values as ONE argument `name`,
    `build(**values)`: a command takes a few typed objects, not a long flat signature."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in names}
            return f(*args, **kwargs, **{name: build(**values)})

        command.__click_params__ = list(getattr(f, "__click_params__", []))  # type: ignore[attr-defined]
        before = len(command.__click_params__)  # type: ignore[attr-defined]
        for option in reversed(options):
            command = option(command)
        names = [p.name for p in command.__click_params__[before:]]  # type: ignore[attr-defined]
        return command

    return decorate


@dataclass(frozen=True)
class TrainingData:
    """Where the chips come from (`DataSpec` fields) and how ore names become impact labels."""

    data: str | None
    scenes: tuple[str, ...]
    points: str | None
    label_column: str
    ore_column: str
    ore_map: str | None
    gold_impact: str | None

    def spec(self, data: str | None = None) -> Any:
        from .data import DataSpec

        return DataSpec(data=self.data if data is None else data, scenes=self.scenes,
                        points=self.points, label_column=self.label_column,
                        ore_column=self.ore_column)


_data_options = _grouped("chips", TrainingData, [
    click.option("--data", "data", default=None,
                 help="Class folders DIR/<class>/*.tif, or EE TFRecord file(s)/dir/glob."),
    click.option("--scene", "scenes", multiple=True, type=click.Path(exists=True, dir_okay=False),
                 help="GeoTIFF scene to cut chips from (repeatable); needs --points."),
    click.option("--points", default=None, type=click.Path(exists=True, dir_okay=False),
                 help="Points table (CSV lon,lat,label[,ore] / GeoJSON / shapefile)."),
    click.option("--label-column", default="label", show_default=True),
    click.option("--ore-column", default="ore", show_default=True,
                 help="Ore-name column used for impact labels when a row has no label."),
    click.option("--ore-map", default=None, type=click.Path(exists=True, dir_okay=False),
                 help="JSON ore → impact table replacing the paper's."),
    click.option("--gold", "gold_impact", type=click.Choice(IMPACTS), default=None,
                 help="Impact class of gold (default high, the paper's exception)."),
])


@dataclass(frozen=True)
class Distribution:
    """How to place the training on devices and workers (`tf.distribute`)."""

    strategy: str
    service: str | None
    job_name: str | None
    workers: int | None
    port: int

    def resolve(self) -> tuple[Any, bool]:
        """Build the strategy first (MultiWorkerMirrored must exist before other TF ops run);
        returns it and whether this process is the chief that writes."""
        from .distribute import ClusterSpec, is_chief, make_strategy

        cluster = ClusterSpec.from_env(os.environ, job=self.job_name, service=self.service,
                                       n_workers=self.workers, port=self.port)
        built = make_strategy(self.strategy, cluster)  # type: ignore[arg-type]
        return built, is_chief(built)


_strategy_options = _grouped("distribution", Distribution, [
    click.option("--strategy", type=click.Choice(["auto", "default", "mirrored", "multiworker"]),
                 default="auto", show_default=True,
                 help="auto: multiworker with TF_CONFIG / an Indexed Job, mirrored with >1 GPU."),
    click.option("--service", default=None,
                 help="Headless Service of an Indexed Job (workers <job>-<i>.<service>)."),
    click.option("--job-name", default=None, help="Indexed Job name (with --service)."),
    click.option("--workers", type=int, default=None, help="Number of workers (with --service)."),
    click.option("--port", type=int, default=2222, show_default=True, help="Worker gRPC port."),
])


def _settings(**values: Any) -> Any:
    from .loop import TrainSettings

    return TrainSettings(**values)


_settings_options = _grouped("settings", _settings, [
    click.option("--epochs", type=int, default=30, show_default=True),
    click.option("--batch-size", type=int, default=32, show_default=True, help="Global batch size."),
    click.option("--lr", "learning_rate", type=float, default=None,
                 help="Adam learning rate [default: 1e-3 discovery, 1e-4 impact]."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--deterministic", is_flag=True, help="TensorFlow op determinism (slower)."),
    click.option("--mixed-precision", is_flag=True, help="float16 compute (GPU only)."),
])


@dataclass(frozen=True)
class CrossValidation:
    """Which k-fold splits `train` reports before it fits the final model."""

    folds: int
    cv: str
    group_distance: float
    balance: str

    @property
    def schemes(self) -> tuple[str, ...]:
        schemes = tuple(s.strip() for s in self.cv.split(",") if s.strip())
        bad = [s for s in schemes if s not in ("random", "spatial")]
        if bad:
            raise click.BadParameter(f"unknown split(s) {bad}; use random, spatial", param_hint="--cv")
        return schemes


_cv_options = _grouped("validation", CrossValidation, [
    click.option("--folds", type=int, default=10, show_default=True, help="k; 0 skips CV."),
    click.option("--cv", "cv", default="random,spatial", show_default=True,
                 help="Splits to report: random, spatial or both."),
    click.option("--group-distance", type=float, default=2000.0, show_default=True,
                 help="Metres within which chips share a spatial fold."),
    click.option("--balance", type=click.Choice(["none", "undersample"]), default="none",
                 show_default=True),
])


@click.group()
def train() -> None:
    """Train the discovery or impact network with k-fold cross-validation."""


@contextmanager
def _local_io(data: str | None, out: str, overwrite: bool):
    """Local stand-ins for gs:// training data and output: data is downloaded first, the
    model directory is written locally and uploaded by the caller once complete."""
    from .. import storage
    from ..errors import ConflictError

    remote_out = storage.is_remote(out)
    if remote_out and not overwrite and storage.exists(storage.join(out, "model.json")):
        raise ConflictError(f"{out} already holds a model; pass --overwrite to replace it")
    if not remote_out and not (data and storage.is_remote(data)):
        yield data, out
        return
    with tempfile.TemporaryDirectory(prefix="minescan-train-") as tmp:
        local_data = str(storage.localize(data, Path(tmp) / "data")) if data else data
        yield local_data, (str(Path(tmp) / "model") if remote_out else out)


def _train_command(kind: str) -> click.Command:
    @click.command(name=kind)
    @_data_options
    @click.option("--out", required=True, type=click.Path(file_okay=False),
                  help="Model directory to write (with report/).")
    @click.option("--bands", default=",".join(DEFAULT_BANDS), show_default=True, callback=_bands,
                  help="Band names in channel order (comma-separated).")
    @_settings_options
    @_cv_options
    @click.option("--threshold", type=float, default=0.6, show_default=True,
                  help="p(mine) threshold stored in the model (discovery).")
    @click.option("--name", default=None, help="Model name [default: the network kind].")
    @click.option("--model-version", default=None, help="Model version [default: UTC timestamp].")
    @click.option("--max-steps", type=int, default=None, hidden=True)
    @click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
    @click.option("--publish", "registry", default=None,
                  help="Then publish --out to this model registry (local or gs://) as a version.")
    @_strategy_options
    def command(chips, out, bands, settings, validation, threshold, name, model_version,
                max_steps, overwrite, registry, distribution) -> None:
        from .crossval import TrainConfig, run_training
        from .progress import EpochReporter

        schemes, folds = validation.schemes, validation.folds
        built, chief = distribution.resolve()
        with _local_io(chips.data, out, overwrite) as (local_data, local_out):
            config = TrainConfig(
                kind=kind, data=chips.spec(local_data), out=local_out, bands=bands, name=name,
                version=model_version, threshold=threshold, folds=folds, cv=schemes,
                group_distance_m=validation.group_distance, balance=validation.balance,
                ore_mapping=chips.ore_map, gold_impact=chips.gold_impact,
                strategy=type(built).__name__, max_steps=max_steps, overwrite=overwrite,
                settings=settings,
            )
            trainings = (len(schemes) * folds if folds else 0) + 1
            with EpochReporter(trainings, settings.epochs) as reporter:
                card = run_training(config, built, write=chief, on_epoch=reporter)
            if card is not None and local_out != out:
                from .. import storage

                storage.put_dir(local_out, out)
        if card is None:
            return
        click.echo(f"wrote {out} ({card.ref})")
        for scheme, summary in card.metrics.items():
            if isinstance(summary, dict) and "accuracy" in summary:
                acc, kappa = summary["accuracy"], summary["kappa"]
                click.echo(f"{scheme} {folds}-fold: accuracy {acc['mean']:.4f} ± {acc['sd']:.4f}, "
                           f"kappa {kappa['mean']:.4f} ± {kappa['sd']:.4f}")
        click.echo(f"report: {out.rstrip('/')}/report/cv.md")
        if registry:
            from ..registry.store import publish

            outcome = publish(registry, out)
            click.echo(f"{outcome.version} {outcome.status} → {outcome.uri}")

    command.help = (
        f"Train the {kind} network: k-fold CV report, then the final model on all chips.\n\n"
        f"Chips are {'201×201 (2×2 km)' if kind == 'discovery' else '21×21 (200×200 m)'}; classes "
        f"{'not_mine, mine' if kind == 'discovery' else 'high, low, no_ore (or ore names)'}."
        f"\n\nExample:\n\n\b\n  minescan train {kind} --data chips/{kind} --out models/{kind} --folds 10"
    )
    command.short_help = f"Train the {kind} network (k-fold CV + final model)."
    return command


train.add_command(_train_command("discovery"))
train.add_command(_train_command("impact"))


@train.command(name="bench")
@click.option("--kind", type=click.Choice(["discovery", "impact", "both"]), default="both",
              show_default=True)
@click.option("--chips", "n_chips", type=int, default=None,
              help="Random chips per epoch [default: 256 discovery, 1024 impact].")
@click.option("--epochs", type=int, default=2, show_default=True, help="Timed epochs (+1 warm-up).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--n-bands", type=int, default=12, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the figures as JSON here.")
@_strategy_options
def bench(kind, n_chips, epochs, batch_size, n_bands, json_out, distribution) -> None:
    """Measure training chips/s of both networks on this machine.

    Example:

    \b
      minescan train bench --kind discovery --epochs 2 --json bench.json
    """
    from .bench import benchmark, environment

    built, chief = distribution.resolve()
    kinds = ["discovery", "impact"] if kind == "both" else [kind]
    results = []
    for k in kinds:
        n = n_chips or (256 if k == "discovery" else 1024)
        r = benchmark(k, n_chips=n, epochs=epochs, batch_size=batch_size, n_bands=n_bands,
                      strategy=built)
        results.append(r)
        click.echo(f"{k}: {r['chips_per_s']} chips/s ({r['chip_shape']}, batch {batch_size}, "
                   f"{r['replicas']} replica(s)); paper anchor {r['paper_chips_per_s']} chips/s "
                   f"on a Colab GPU")
    if json_out and chief:
        payload = {"environment": environment(), "results": results}
        Path(json_out).write_text(json.dumps(payload, indent=2) + "\n")


@click.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Model directory written by `minescan train`.")
@_data_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the metrics as JSON here.")
def evaluate(model_dir, chips, json_out) -> None:
    """Score a model on a held-out set: accuracy, F1, precision, recall, ROC AUC, kappa.

    Example:

    \b
      minescan evaluate models/discovery --data chips/holdout
    """
    from .crossval import evaluate_model
    from .report import write_json

    result = evaluate_model(model_dir, chips.spec(), ore_mapping=chips.ore_map,
                            gold_impact=chips.gold_impact)
    if json_out:
        out = Path(json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        write_json(tmp, result)
        tmp.replace(out)
    click.echo(
        f"{result['model']} on {result['n']} chips: accuracy {result['accuracy']:.4f}, "
        f"F1 {result['f1']:.4f}, precision {result['precision']:.4f}, recall {result['recall']:.4f}, "
        f"ROC AUC {_fmt(result['roc_auc'])}, kappa {result['kappa']:.4f}"
    )
    click.echo(f"confusion matrix (rows actual, columns predicted {list(result['per_class'])}): "
               f"{result['confusion_matrix']}")


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"

