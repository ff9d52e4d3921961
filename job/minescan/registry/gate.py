"""The evaluation gate: a candidate version goes live only if it does as well as the current one.

`run_gate` scores the candidate and the channel's current version of the same network on
the same evaluation set (labelled chips, read and scored by `minescan evaluate`'s code with
each model's own bands, normalisation and threshold), checks the rules file, and writes a
report beside the candidate (`versions/<V>/gates/`). `promote` looks for a passing report
against the channel's current version before it moves the channel.

A rules file (YAML or JSON):

    rules:
      - {metric: recall, min_delta: -0.01}     # candidate ≥ current − 0.01
      - {metric: precision, min: 0.8}          # candidate ≥ 0.8
      - {metric: kappa, min: 0.7, kind: impact}  # for one network only
    require_finite: true                        # every metric of the candidate finite
    eval_sha256: null                           # pin the evaluation set's content

Metrics are those of `minescan evaluate`: accuracy, f1, precision, recall, roc_auc, kappa
(precision/recall/F1 of `mine` for discovery, macro averages for impact).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .. import __version__, storage
from ..errors import InputError, ModelError
from ..training.metrics import METRIC_NAMES
from .store import (
    GATES_DIR,
    ChannelPointer,
    Kind,
    fetched_version,
    read_channel,
    utc_now,
    version_uri,
)

log = logging.getLogger(__name__)


class GateRejected(ModelError):
    """The candidate did worse than the rules allow (exit 4: not a model to deploy)."""


class GateRule(BaseModel):
    """One condition on one metric of the candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(description=f"one of {', '.join(METRIC_NAMES)}")
    min: float | None = Field(None, description="the candidate's value must be at least this")
    min_delta: float | None = Field(
        None, description="the candidate's value must be at least the current version's plus this"
    )
    kind: Kind | None = Field(None, description="only for this network; None: both")

    @field_validator("metric")
    @classmethod
    def _known(cls, metric: str) -> str:
        if metric not in METRIC_NAMES:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRIC_NAMES)}")
        return metric

    @model_validator(mode="after")
    def _has_a_bound(self) -> GateRule:
        if self.min is None and self.min_delta is None:
            raise ValueError(f"rule on {self.metric} needs min or min_delta")
        return self

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} ≥ {self.min:g}")
        if self.min_delta is not None:
            sign = "−" if self.min_delta < 0 else "+"
            parts.append(f"{self.metric} ≥ current {sign} {abs(self.min_delta):g}")
        return " and ".join(parts) + (f" ({self.kind})" if self.kind else "")


class GateRules(BaseModel):
    """The rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[GateRule] = Field(min_length=1, description="every rule must hold")
    require_finite: bool = Field(True, description="every metric of the candidate must be finite")
    eval_sha256: str | None = Field(None, description="the evaluation set's content digest, pinned")


class RuleOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    metric: str
    candidate: float | None
    current: float | None
    bound: float | None
    passed: bool
    note: str = ""


class GateReport(BaseModel):
    """What `models gate` found, written beside the candidate version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    candidate: str
    kind: Kind
    channel: str
    channel_seq: int | None = Field(description="the channel pointer the candidate was compared with")
    baseline: str | None = Field(description="the channel's current version of this network")
    eval: dict[str, Any] = Field(description="evaluation set: uri, sha256, chips")
    metrics: dict[str, dict[str, Any] | None] = Field(description="candidate and current")
    outcomes: list[RuleOutcome]
    passed: bool
    rules: dict[str, Any]
    at: str
    minescan_version: str = __version__


def load_rules(uri: str) -> GateRules:
    """Read and validate a rules file (local or gs://, YAML or JSON)."""
    import yaml

    try:
        data = yaml.safe_load(storage.read_text(uri))
    except yaml.YAMLError as exc:
        raise InputError(f"cannot parse gate rules {uri}: {str(exc).splitlines()[0]}") from None
    try:
        return GateRules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise InputError(f"gate rules {uri}: {where}: {first['msg'].removeprefix('Value error, ')}") from None


def check_rules(rules: GateRules, kind: str, candidate: dict[str, Any],
                current: dict[str, Any] | None) -> list[RuleOutcome]:
    """The outcome of every rule that applies to `kind` (pure: metrics in, verdicts out)."""
    outcomes = []
    if rules.require_finite:
        bad = [m for m in METRIC_NAMES if not _finite(candidate.get(m))]
        outcomes.append(RuleOutcome(
            rule="every metric finite", metric=",".join(METRIC_NAMES), candidate=None, current=None,
            bound=None, passed=not bad,
            note=f"not finite: {', '.join(bad)} (does the evaluation set hold every class?)" if bad else "",
        ))
    for rule in rules.rules:
        if rule.kind not in (None, kind):
            continue
        value = candidate[rule.metric]
        base = current[rule.metric] if current is not None else None
        bounds, note = [], ""
        if rule.min is not None:
            bounds.append(rule.min)
        if rule.min_delta is not None:
            if _finite(base):
                bounds.append(base + rule.min_delta)
            else:
                note = "no current version to compare with" if current is None else f"current {rule.metric} is not finite"
        bound = max(bounds) if bounds else None
        passed = _finite(value) and (bound is None or value >= bound - 1e-12)
        outcomes.append(RuleOutcome(rule=rule.describe(), metric=rule.metric, candidate=_num(value),
                                    current=_num(base), bound=bound, passed=passed, note=note))
    return outcomes


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def run_gate(registry: str, candidates: list[str], channel: str, eval_uri: str,
             rules_uri: str) -> list[tuple[GateReport, str]]:
    """Gate each candidate against `channel`; write each report; raise if any fails.

    `eval_uri` holds labelled chips for the candidates' network (class folders or
    TFRecords, as `minescan evaluate --data` reads), or `discovery/` and `impact/` sets.
    """
    rules = load_rules(rules_uri)
    pointer, _ = read_channel(registry, channel)
    results = []
    with tempfile.TemporaryDirectory(prefix="minescan-gate-") as tmp:
        eval_root = storage.localize(eval_uri, Path(tmp) / "eval")
        for name in candidates:
            results.append(_gate_one(registry, name, channel, pointer, eval_uri, eval_root, rules))
    failed = [(r, uri) for r, uri in results if not r.passed]
    if failed:
        raise GateRejected("; ".join(_rejection(r, uri) for r, uri in failed))
    return results


def _gate_one(registry: str, name: str, channel: str, pointer: ChannelPointer | None, eval_uri: str,
              eval_root: Path, rules: GateRules) -> tuple[GateReport, str]:
    with fetched_version(registry, name) as (_, card, local):
        kind = card.kind
        data = eval_root / kind if (eval_root / kind).is_dir() else eval_root
        digest = eval_digest(data)
        if rules.eval_sha256 and rules.eval_sha256 != digest:
            raise InputError(
                f"evaluation set {eval_uri} has digest {digest[:16]}…, the rules pin "
                f"{rules.eval_sha256[:16]}…: use the pinned set or update eval_sha256"
            )
        metrics = _evaluate(local, data, name, card.bands, eval_uri)
    baseline = pointer.versions()[kind] if pointer else None
    current = None
    if baseline is not None:
        with fetched_version(registry, baseline) as (_, base_card, base_local):
            current = _evaluate(base_local, data, baseline, base_card.bands, eval_uri)
    outcomes = check_rules(rules, kind, metrics, current)
    report = GateReport(
        candidate=name, kind=kind, channel=channel, channel_seq=pointer.seq if pointer else None,
        baseline=baseline, eval={"uri": eval_uri, "sha256": digest,
                                 **{k: metrics["data"][k] for k in ("n_chips", "counts", "bands", "chip_size")}},
        metrics={"candidate": _summary(metrics), "current": _summary(current) if current else None},
        outcomes=outcomes, passed=all(o.passed for o in outcomes),
        rules=rules.model_dump(mode="json"), at=utc_now(),
    )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    uri = storage.join(version_uri(registry, name), GATES_DIR, f"{stamp}-{channel}-{uuid.uuid4().hex[:8]}.json")
    storage.create_only(uri, report.model_dump_json(indent=2).encode())
    log.info("gate", extra={"candidate": name, "channel": channel, "baseline": baseline,
                            "passed": report.passed, "report": uri})
    return report, uri


def eval_digest(local_dir: Path) -> str:
    """SHA-256 over the evaluation set's file hashes: the same chips give the same digest."""
    if local_dir.is_file():
        return storage.sha256_file(local_dir)
    tree = storage.hash_tree(local_dir)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()


def _evaluate(model_dir: Path, data: Path, name: str, bands: list[str], eval_uri: str) -> dict[str, Any]:
    from ..training.crossval import evaluate_model
    from ..training.data import DataSpec

    try:
        return evaluate_model(str(model_dir), DataSpec(data=str(data)))
    except InputError as exc:
        raise InputError(
            f"evaluation set {eval_uri} does not fit {name} (bands {','.join(bands)}): "
            f"{str(exc).removesuffix('; check --bands')}"
        ) from None


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("model", "n", *METRIC_NAMES, "confusion_matrix")}


def _rejection(report: GateReport, uri: str) -> str:
    failed = [o for o in report.outcomes if not o.passed]
    why = ", ".join(
        f"{o.metric} {_fmt(o.candidate)} < {_fmt(o.bound)}" if o.bound is not None else f"{o.rule}: {o.note}"
        for o in failed
    )
    return f"{report.candidate} rejected against {report.channel} ({report.baseline or 'no current version'}): {why}; report {uri}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
