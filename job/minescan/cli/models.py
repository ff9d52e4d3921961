"""`minescan models`: train the demo models, inspect and verify model directories."""

from __future__ import annotations

import json

import click


@click.group()
def models():
    """Build, inspect and verify model directories."""


@models.command("train-demo")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to hold discovery/ and impact/.")
@click.option("--seed", type=int, default=None, help="Recipe seed (default: the bundled models').")
@click.option("--overwrite", is_flag=True, help="Replace existing model directories.")
def train_demo(out, seed, overwrite):
    """Retrain the bundled demo models: synthetic chips, then the same training as `minescan train`.

    Example:

    \b
      minescan models train-demo --out my-demo-models
    """
    from ..training.demo_models import DemoRecipe, train_demo_models

    recipe = DemoRecipe() if seed is None else DemoRecipe(seed=seed)
    cards = train_demo_models(out, recipe, overwrite=overwrite)
    for kind, card in cards.items():
        click.echo(f"{kind}: {card.ref} → {out}/{kind}")


@models.command("info")
@click.argument("model_dir", type=click.Path())
def info(model_dir):
    """Print a model directory's card after verifying its weights hash.

    Example:

    \b
      minescan models info gs://bucket/models/discovery-2024
    """
    from ..models.card import read_model_card

    card = read_model_card(model_dir)
    click.echo(json.dumps(card.model_dump(mode="json"), indent=2))


def _registry_option(f):
    return click.option(
        "--registry", required=True, envvar="MINESCAN_REGISTRY", show_envvar=True,
        help="Model registry: a local directory or gs://bucket/prefix.",
    )(f)


def _channel_option(f):
    return click.option("--channel", required=True, help="Channel name, e.g. prod or dev.")(f)


def _by_option(f):
    return click.option("--by", default=None, help="Who is acting, for the history [default: this user].")(f)


@models.command("publish")
@click.argument("model_dir")
@_registry_option
def publish(model_dir, registry):
    """Store MODEL_DIR (local or gs://) in the registry as an immutable version.

    The version is named after the model card's SHA-256; publishing the same model again
    changes nothing. Prints the version name first.

    Example:

    \b
      minescan models publish models/impact-v3 --registry gs://BUCKET/registry
    """
    from ..registry.store import publish as publish_version

    outcome = publish_version(registry, model_dir)
    click.echo(f"{outcome.version} {outcome.status} → {outcome.uri}")


@models.command("list")
@_registry_option
@click.option("--kind", type=click.Choice(["discovery", "impact"]), help="Only this network.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
def list_cmd(registry, kind, as_json):
    """List the registry's versions: kind, bands, training data, evaluation figures, channels.

    Example:

    \b
      minescan models list --registry gs://BUCKET/registry --kind impact
    """
    from ..registry.store import describe_versions

    rows = describe_versions(registry, kind)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo(f"no versions in {registry}")
    for row in rows:
        channels = f"  [{', '.join(row['channels'])}]" if row["channels"] else ""
        click.echo(f"{row['version']}  {row['model']}  published {row['published_at']}{channels}")
        click.echo(f"    bands {','.join(row['bands'])}; training {_training_text(row['training'])}")
        click.echo(f"    evaluation: {_evaluation_text(row['evaluation'])}")


def _training_text(training: dict) -> str:
    if training["n_chips"] is None:
        return f"data not described ({training['source'] or 'no source'})"
    counts = ", ".join(f"{k} {v}" for k, v in (training["counts"] or {}).items())
    return f"{training['n_chips']} chips ({counts}) from {training['source']}"


def _evaluation_text(evaluation: dict) -> str:
    parts = [f"{scheme} CV " + " ".join(f"{m} {v:.3f}" for m, v in figures.items() if m in ("accuracy", "kappa"))
             for scheme, figures in evaluation["cv"].items()]
    for channel, gate in evaluation["gates"].items():
        figures = " ".join(f"{m} {gate[m]:.3f}" for m in ("recall", "precision", "kappa") if gate.get(m) is not None)
        parts.append(f"gate {channel} {'passed' if gate['passed'] else 'REJECTED'} {figures}".rstrip())
    return "; ".join(parts) or "none recorded"


@models.command("gate")
@_registry_option
@click.option("--candidate", "candidates", required=True, multiple=True,
              help="Version to gate (repeatable: one per network).")
@_channel_option
@click.option("--eval", "eval_uri", required=True,
              help="Labelled chips (local or gs://), or a directory with discovery/ and impact/ sets.")
@click.option("--rules", "rules_uri", required=True, help="Gate rules file (YAML or JSON).")
def gate(registry, candidates, channel, eval_uri, rules_uri):
    """Score candidates and the channel's current versions on one evaluation set.

    Passes (exit 0) only if every rule holds; writes a report beside each candidate either
    way; a rejected candidate exits 4.

    Example:

    \b
      minescan models gate --registry gs://B/registry --candidate impact-0123456789abcdef \\
          --channel prod --eval gs://B/eval/2025 --rules configs/gate.yaml
    """
    from ..registry.gate import run_gate

    for report, uri in run_gate(registry, list(candidates), channel, eval_uri, rules_uri):
        click.echo(f"{report.candidate} passed against {channel} "
                   f"({report.baseline or 'no current version'}) → {uri}")
        for o in report.outcomes:
            values = "" if o.candidate is None else f": {o.candidate:.4f}" + (
                "" if o.current is None else f" (current {o.current:.4f})")
            click.echo(f"    {o.rule}{values} {o.note}".rstrip())


@models.command("promote")
@_registry_option
@_channel_option
@click.option("--discovery", help="Discovery version to point the channel at.")
@click.option("--impact", help="Impact version to point the channel at.")
@click.option("--force", is_flag=True, help="Promote without a passing gate (recorded in the history).")
@click.option("--note", default="", help="Why, for the history.")
@_by_option
def promote_cmd(registry, channel, discovery, impact, force, note, by):
    """Move CHANNEL to new versions, atomically; refuses a version without a passing gate.

    Exit 5 if another promotion or rollback moved the channel meanwhile (nothing changed).

    Example:

    \b
      minescan models promote --registry gs://B/registry --channel prod --impact impact-0123456789abcdef
    """
    from ..registry.store import promote

    pointer, changed = promote(registry, channel, {"discovery": discovery, "impact": impact},
                               force=force, by=by, note=note)
    state = f"{channel} #{pointer.seq}: discovery {pointer.discovery}, impact {pointer.impact}"
    click.echo(f"{'promoted' if changed else 'unchanged'} {state}"
               + (f" (forced: {', '.join(pointer.forced)})" if changed and pointer.forced else ""))


@models.command("rollback")
@_registry_option
@_channel_option
@click.option("--note", default="", help="Why, for the history.")
@_by_option
def rollback_cmd(registry, channel, note, by):
    """Point CHANNEL back at the versions it had before its current pointer.

    Example:

    \b
      minescan models rollback --registry gs://B/registry --channel prod --note "recall drop"
    """
    from ..registry.store import rollback

    pointer = rollback(registry, channel, by=by, note=note)
    click.echo(f"rolled back {channel} to #{pointer.restores} as #{pointer.seq}: "
               f"discovery {pointer.discovery}, impact {pointer.impact}")


@models.command("history")
@_registry_option
@_channel_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pointer.")
def history_cmd(registry, channel, as_json):
    """Every pointer CHANNEL has had, oldest first; the last line is the current one.

    Example:

    \b
      minescan models history --registry gs://B/registry --channel prod
    """
    from ..registry.store import read_history

    records = read_history(registry, channel)
    if not records:
        click.echo(f"channel {channel} has no history in {registry}")
    for r in records:
        if as_json:
            click.echo(r.model_dump_json())
            continue
        how = f"rollback to #{r.restores}" if r.action == "rollback" else "promote"
        forced = f" FORCED {','.join(r.forced)}" if r.forced else ""
        click.echo(f"#{r.seq} {r.at} {r.by} {how}{forced}: discovery {r.discovery}, impact {r.impact}"
                   + (f" — {r.note}" if r.note else ""))
