"""The model registry: immutable versions, channels that point at them, and their history.

    REGISTRY/                          a local directory or gs://bucket/prefix
      versions/<kind>-<digest>/        one published model directory, never changed
        _SUCCESS.json                  the version record: card, SHA-256 of every file
        gates/<time>-<channel>-<id>.json   evaluation reports of `minescan models gate`
      channels/<name>                  the pointer: one version per network (compare-and-swap)
      history/<name>/<seq>.json        every pointer the channel has had, append-only

A version's name is its network kind and the first 16 hex digits of the SHA-256 of its
model card (which holds the SHA-256 of the weights), so the same model always gets the
same name and two different models never share one. Versions are committed with the shard
protocol (`batch.commit`): a version is there whole or not at all, and one that
exists is never overwritten. Reading a version checks every file against its record.

A channel moves by compare-and-swap on the pointer's generation
(`storage.replace_if_generation`): of two promotions that read the same pointer exactly one
writes, the other fails with a conflict and changes nothing, and a reader sees the old
pointer or the new one, never a mix. Each pointer is also written, create-only, to the
channel's history under its sequence number; the writer of pointer n+1 first makes sure
pointer n is there, so a crash between the two writes leaves no gap behind the current one.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import storage
from ..batch import commit
from ..batch.layout import MARKER
from ..errors import ConflictError, InputError, ModelError
from ..models.card import ModelCard, read_model_card

log = logging.getLogger(__name__)

Kind = Literal["discovery", "impact"]
KINDS: tuple[Kind, ...] = ("discovery", "impact")
VERSIONS_DIR = "versions"
CHANNELS_DIR = "channels"
HISTORY_DIR = "history"
GATES_DIR = "gates"
DIGEST_CHARS = 16
_VERSION_RE = re.compile(rf"(discovery|impact)-[0-9a-f]{{{DIGEST_CHARS}}}")
_CHANNEL_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")


# ---------------------------------------------------------------- names


def card_digest(card: ModelCard) -> str:
    """SHA-256 of the card's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(card.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def version_name(card: ModelCard) -> str:
    """`<kind>-<16 hex digits of card_digest>`: the content-derived name of a version."""
    return f"{card.kind}-{card_digest(card)[:DIGEST_CHARS]}"


def check_version(name: str) -> str:
    if not _VERSION_RE.fullmatch(name or ""):
        raise InputError(
            f"{name!r} is not a version name (discovery-<16 hex> or impact-<16 hex>); "
            "`minescan models list` shows them"
        )
    return name


def check_channel(name: str) -> str:
    if not _CHANNEL_RE.fullmatch(name or ""):
        raise InputError(
            f"{name!r} is not a channel name: lower-case letters, digits and '-', "
            "starting with a letter, at most 32 characters (e.g. prod, dev)"
        )
    return name


def version_uri(registry: str, version: str) -> str:
    return storage.join(registry, VERSIONS_DIR, check_version(version))


def channel_uri(registry: str, channel: str) -> str:
    return storage.join(registry, CHANNELS_DIR, check_channel(channel))


def history_uri(registry: str, channel: str, seq: int | None = None) -> str:
    base = storage.join(registry, HISTORY_DIR, check_channel(channel))
    return base if seq is None else storage.join(base, f"{seq:08d}.json")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def current_user() -> str:
    """Who runs this command, for the channel history (a pod's UID may have no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _parse(model: type[BaseModel], raw: Any, where: str) -> Any:
    """Validate a registry object; a malformed one is a corrupted registry (exit 4)."""
    try:
        return model.model_validate(json.loads(raw) if isinstance(raw, (bytes, str)) else raw)
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        at = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ModelError(
            f"registry object {where} is corrupted ({at}: {first['msg']}); restore it from "
            "a backup or remove it"
        ) from None


# ---------------------------------------------------------------- versions


class VersionRecord(BaseModel):
    """What the registry knows of one version, kept in its `_SUCCESS.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(description="the content-derived name")
    kind: Kind
    card_sha256: str = Field(description="card_digest of the model card")
    files: dict[str, str] = Field(description="SHA-256 of every file, by POSIX relative path")
    published_at: str = Field(description="UTC ISO-8601")
    source: str = Field(description="the model directory it was published from")
    card: dict[str, Any] = Field(description="the model card, so listing needs no download")


@dataclass(frozen=True)
class Version:
    """A committed version: its record, its URI, and where its files are."""

    record: VersionRecord
    uri: str
    data_uri: str

    @property
    def name(self) -> str:
        return self.record.version

    @property
    def card(self) -> ModelCard:
        return ModelCard.model_validate(self.record.card)


@dataclass(frozen=True)
class PublishOutcome:
    version: str
    uri: str
    status: Literal["published", "exists"]


def publish(registry: str, model_dir: str) -> PublishOutcome:
    """Store the model directory `model_dir` (local or gs://) as an immutable version.

    Publishing the same model again changes nothing ("exists"); a version of that name
    with other files is never overwritten (`ConflictError`).
    """
    with tempfile.TemporaryDirectory(prefix="minescan-publish-") as tmp:
        local = storage.localize(model_dir, tmp)
        card = read_model_card(local)  # validates the card and checks the weights hash
        name = version_name(card)
        files = storage.hash_tree(local)
        if MARKER in files:
            raise InputError(f"{model_dir} holds a {MARKER}: publish a model directory, not a shard")
        record = VersionRecord(
            version=name, kind=card.kind, card_sha256=card_digest(card), files=files,
            published_at=utc_now(), source=str(model_dir), card=card.model_dump(mode="json"),
        )
        uri = version_uri(registry, name)
        # the commit records every file's SHA-256 itself
        if commit.publish_dir(local, uri, record.model_dump(mode="json", exclude={"files"})):
            log.info("published", extra={"version": name, "uri": uri, "model": card.ref})
            return PublishOutcome(name, uri, "published")
    existing = get_version(registry, name)
    if existing.record.files != files:
        differ = sorted(set(existing.record.files.items()) ^ set(files.items()))
        raise ConflictError(
            f"{uri} already holds version {name} with other files ({differ[0][0]} differs); "
            "versions are never overwritten: publish the model under a new model version"
        )
    return PublishOutcome(name, uri, "exists")


def get_version(registry: str, version: str) -> Version:
    """A version's record (no download); `InputError` if there is no such version."""
    uri = version_uri(registry, version)
    committed = commit.read_committed(uri)
    if committed is None:
        raise InputError(
            f"version {version} does not exist in {registry}; "
            f"`minescan models list --registry {registry}` shows its versions"
        )
    fields = {k: v for k, v in committed.record.items() if k != "data"}
    record: VersionRecord = _parse(VersionRecord, fields, storage.join(uri, MARKER))
    if record.version != version:
        raise ModelError(f"registry object {uri} records version {record.version}: the registry is corrupted")
    return Version(record=record, uri=uri, data_uri=committed.data_uri)


def list_versions(registry: str, kind: Kind | None = None) -> list[Version]:
    """Every committed version, oldest first."""
    versions = []
    for name in storage.list_dir(storage.join(registry, VERSIONS_DIR)):
        if _VERSION_RE.fullmatch(name) and (kind is None or name.startswith(f"{kind}-")):
            try:
                versions.append(get_version(registry, name))
            except InputError:
                continue  # a publish still under way, or one that crashed: not a version
    return sorted(versions, key=lambda v: (v.record.published_at, v.name))


@contextmanager
def fetched_version(registry: str, version: str) -> Iterator[tuple[Version, ModelCard, Path]]:
    """A local, verified copy of a version: (version, card, directory), for the block.

    Every file is checked against the version record, the card against the name, and the
    weights against the card; any mismatch is a `ModelError` (exit 4).
    """
    found = get_version(registry, version)
    if storage.is_remote(found.data_uri):
        with tempfile.TemporaryDirectory(prefix="minescan-version-") as tmp:
            local = Path(tmp) / version
            storage.get_dir(found.data_uri, local)
            yield found, verify_files(found, local), local
    else:
        local = Path(found.data_uri)
        yield found, verify_files(found, local), local


def verify_files(version: Version, local: Path) -> ModelCard:
    """Check a local copy of `version` file by file; return its verified card."""
    for rel, expected in sorted(version.record.files.items()):
        path = local / rel
        where = storage.join(version.data_uri, rel)
        if not path.is_file():
            raise ModelError(f"registry object {where} is missing: the version is incomplete; restore it")
        actual = storage.sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"registry object {where} has SHA-256 {actual[:16]}…, its version record says "
                f"{expected[:16]}…: the registry copy is corrupted; restore the object or "
                "publish the model again"
            )
    card = read_model_card(local)
    if version_name(card) != version.name:
        raise ModelError(f"the model card of {version.name} does not match the version name: the registry is corrupted")
    return card


def gate_reports(registry: str, version: str) -> list[tuple[str, dict[str, Any]]]:
    """(uri, report) of every gate report of `version`, newest first; unreadable ones skipped
    (they cannot vouch for anything)."""
    base = storage.join(version_uri(registry, version), GATES_DIR)
    reports = []
    for name in reversed(storage.list_dir(base)):
        uri = storage.join(base, name)
        try:
            report = json.loads(storage.read_text(uri))
        except (ValueError, storage.NotFoundError):
            continue
        if isinstance(report, dict):
            reports.append((uri, report))
    return reports


def passing_gate(registry: str, version: str, channel: str, baseline: str | None) -> str | None:
    """The newest passing gate report of `version` against `channel` when the channel's
    version of that network was `baseline`."""
    for uri, report in gate_reports(registry, version):
        if (report.get("channel") == channel and report.get("passed") is True
                and report.get("baseline") == baseline and report.get("candidate") == version):
            return uri
    return None


def describe_versions(registry: str, kind: Kind | None = None) -> list[dict[str, Any]]:
    """What `models list` shows of each version: kind, bands, training data, evaluation
    figures (cross-validation from the card, the newest gate result per channel), and the
    channels that point at it now."""
    live: dict[str, list[str]] = {}
    for channel in storage.list_dir(storage.join(registry, CHANNELS_DIR)):
        if _CHANNEL_RE.fullmatch(channel):
            pointer, _ = read_channel(registry, channel)
            for name in (pointer.versions().values() if pointer else ()):
                live.setdefault(name, []).append(channel)
    rows = []
    for version in list_versions(registry, kind):
        card = version.card
        data = card.training.get("data", {})
        cv = {scheme: {m: round(v["mean"], 4) for m, v in summary.items() if isinstance(v, dict) and "mean" in v}
              for scheme, summary in card.metrics.items() if isinstance(summary, dict) and "accuracy" in summary}
        gates = {}
        for _, report in gate_reports(registry, version.name):
            candidate = (report.get("metrics") or {}).get("candidate") or {}
            gates.setdefault(report.get("channel"), {
                "passed": report.get("passed"), "at": report.get("at"),
                **{m: candidate.get(m) for m in ("accuracy", "precision", "recall", "kappa")},
            })
        rows.append({
            "version": version.name, "kind": version.record.kind, "model": card.ref,
            "bands": card.bands, "published_at": version.record.published_at,
            "training": {"n_chips": data.get("n_chips"), "counts": data.get("counts"),
                         "source": (data.get("source") or {}).get("type")},
            "evaluation": {"cv": cv, "gates": gates},
            "channels": sorted(live.get(version.name, [])),
        })
    return rows


# ---------------------------------------------------------------- channels


class ChannelPointer(BaseModel):
    """One state of a channel: the version of each network, and how it came to be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    seq: int = Field(ge=1, description="1 for the channel's first pointer, then +1 per change")
    discovery: str | None = Field(None, description="discovery version")
    impact: str | None = Field(None, description="impact version")
    action: Literal["promote", "rollback"]
    previous: int | None = Field(None, description="the pointer `rollback` goes back to")
    restores: int | None = Field(None, description="rollback: the pointer whose versions it restores")
    gates: dict[str, str] = Field(default_factory=dict, description="kind → passing gate report")
    forced: list[str] = Field(default_factory=list, description="kinds changed without a passing gate")
    at: str = Field(description="UTC ISO-8601")
    by: str = Field(description="who ran the command")
    note: str = ""
    id: str = Field(description="unique per write: a retried write recognises its own")

    def versions(self) -> dict[str, str | None]:
        return {"discovery": self.discovery, "impact": self.impact}


def read_channel(registry: str, channel: str) -> tuple[ChannelPointer | None, int]:
    """The channel's current pointer (None if it was never set) and its generation."""
    uri = channel_uri(registry, channel)
    raw, generation = storage.read_with_generation(uri)
    if raw is None:
        return None, generation
    return _parse(ChannelPointer, raw, uri), generation


def read_history(registry: str, channel: str) -> list[ChannelPointer]:
    """Every pointer the channel has had, oldest first (the current one included)."""
    base = history_uri(registry, channel)
    records = {}
    for name in storage.list_dir(base):
        if re.fullmatch(r"\d{8}\.json", name):
            uri = storage.join(base, name)
            records[int(name[:8])] = _parse(ChannelPointer, storage.read_bytes(uri), uri)
    current, _ = read_channel(registry, channel)
    if current is not None:
        records.setdefault(current.seq, current)  # its writer may have died before recording it
    return [records[seq] for seq in sorted(records)]


def _history_record(registry: str, channel: str, seq: int) -> ChannelPointer:
    uri = history_uri(registry, channel, seq)
    try:
        return _parse(ChannelPointer, storage.read_bytes(uri), uri)
    except storage.NotFoundError:
        raise ModelError(f"{uri} is missing from the channel history: restore it") from None


def _append_history(registry: str, payload: bytes, pointer: ChannelPointer) -> None:
    storage.create_only(history_uri(registry, pointer.channel, pointer.seq), payload)


def _swap(registry: str, current: ChannelPointer | None, generation: int, new: ChannelPointer) -> ChannelPointer:
    """Write `new` if the channel is still at `generation`; else raise, having written nothing."""
    if current is not None:
        _append_history(registry, current.model_dump_json(indent=2).encode(), current)
    payload = new.model_dump_json(indent=2).encode()
    if not storage.replace_if_generation(channel_uri(registry, new.channel), payload, generation):
        raise ConflictError(
            f"channel {new.channel} moved while this command ran (another promotion or rollback "
            f"won); nothing was changed: see `minescan models history --channel {new.channel}` "
            "and run the command again"
        )
    _append_history(registry, payload, new)
    log.info("channel moved", extra={"channel": new.channel, "seq": new.seq, "action": new.action,
                                     **{k: v for k, v in new.versions().items() if v}})
    return new


def promote(
    registry: str, channel: str, versions: dict[str, str], *, force: bool = False,
    by: str | None = None, note: str = "",
) -> tuple[ChannelPointer, bool]:
    """Point `channel` at `versions` (kind → version); (pointer, whether it changed).

    Each new version is verified file by file and must have a passing gate report against
    the channel's current version of its network, unless `force` (recorded in the pointer).
    """
    wanted = {kind: check_version(v) for kind, v in versions.items() if v}
    if not wanted:
        raise InputError("nothing to promote: name a --discovery and/or an --impact version")
    for kind, name in wanted.items():
        if not name.startswith(f"{kind}-"):
            raise InputError(f"{name} is not a {kind} version")
    current, generation = read_channel(registry, channel)
    now = current.versions() if current else dict.fromkeys(KINDS)
    changes = {kind: name for kind, name in wanted.items() if now[kind] != name}
    if current is not None and not changes:
        return current, False
    gates, forced = {}, []
    for kind, name in changes.items():
        with fetched_version(registry, name):
            pass  # verified file by file: a channel never points at a damaged version
        report = passing_gate(registry, name, channel, baseline=now[kind])
        if report is not None:
            gates[kind] = report
        elif force:
            forced.append(kind)
        else:
            raise ConflictError(
                f"{name} has no passing gate against {channel}'s current {kind} version "
                f"({now[kind] or 'none'}): run `minescan models gate --candidate {name} "
                f"--channel {channel} …` first, or pass --force (recorded in the history)"
            )
    new = ChannelPointer(
        channel=channel, seq=(current.seq + 1) if current else 1, **{**now, **changes},
        action="promote", previous=current.seq if current else None, gates=gates,
        forced=forced, at=utc_now(), by=by or current_user(), note=note, id=uuid.uuid4().hex,
    )
    return _swap(registry, current, generation, new), True


def rollback(registry: str, channel: str, *, by: str | None = None, note: str = "") -> ChannelPointer:
    """Point `channel` back at the versions it had before its current pointer.

    A rollback is itself a new pointer in the history; rolling back again goes one further
    step back, as an editor's undo does.
    """
    current, generation = read_channel(registry, channel)
    if current is None:
        raise InputError(f"channel {channel} does not exist in {registry}: nothing to roll back")
    if current.previous is None:
        raise InputError(f"channel {channel} is at its first pointer (seq {current.seq}): nothing to roll back to")
    target = _history_record(registry, channel, current.previous)
    for name in filter(None, target.versions().values()):
        get_version(registry, name)
    new = ChannelPointer(
        channel=channel, seq=current.seq + 1, discovery=target.discovery, impact=target.impact,
        action="rollback", previous=target.previous, restores=target.seq, at=utc_now(),
        by=by or current_user(), note=note, id=uuid.uuid4().hex,
    )
    return _swap(registry, current, generation, new)
