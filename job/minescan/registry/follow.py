"""Runs that follow a registry channel: the channel is resolved once per run.

The first map pod of a run records the channel's pointer in `<run>/channel.json`
(create-only); every later pod of that run, retried or late, takes the versions from that
record, never from the channel, so a promotion during the run never mixes two models in it.
The next run reads the channel afresh.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from .. import storage
from ..batch.layout import RunLayout
from ..errors import ConflictError, InputError
from .store import KINDS, get_version, read_channel, utc_now

if TYPE_CHECKING:
    from ..scan.config import ScanConfig

log = logging.getLogger(__name__)


def follow_channel(config: ScanConfig, run: str | None = None) -> ScanConfig:
    """`config` with the model paths of the channel it follows (unchanged if it follows none).

    With a `run`, the channel is resolved once for the whole run: the first pod records the
    pointer in `<run>/channel.json` (create-only) and every later pod, retried or not, uses
    that record, so a promotion during the run never mixes models inside it. The returned
    config names the versions' directories and no channel, so run.json pins the exact versions.
    """
    from ..scan.config import ScanConfig

    if config.channel is None or config.registry is None:
        return config
    pin = _run_pin(run) if run is not None else None
    if pin is None:
        pin = _channel_pin(config.registry, config.channel)
        if run is not None and not storage.create_only(
            RunLayout(run).channel_json, json.dumps(pin, indent=2, sort_keys=True).encode()
        ):
            pin = _run_pin(run)  # another pod of this run resolved it first: use its record
    if (pin["registry"], pin["channel"]) != (config.registry, config.channel):
        raise ConflictError(
            f"{run} follows channel {pin['channel']} of {pin['registry']}, not {config.channel} of "
            f"{config.registry}: use a new --out run, or the run's own config"
        )
    paths = {f"{kind}_model": get_version(config.registry, pin[kind]).data_uri for kind in KINDS}
    log.info("following channel", extra={**pin, "run": run})
    data = {**config.model_dump(), "registry": None, "channel": None, **paths}
    return ScanConfig.model_validate(data)


def _channel_pin(registry: str, channel: str) -> dict[str, Any]:
    pointer, _ = read_channel(registry, channel)
    if pointer is None:
        raise InputError(
            f"channel {channel} does not exist in {registry}: promote versions to it first "
            "(`minescan models promote`)"
        )
    missing = [kind for kind, name in pointer.versions().items() if name is None]
    if missing:
        raise InputError(f"channel {channel} names no {' or '.join(missing)} version: promote one first")
    return {"registry": registry, "channel": channel, "seq": pointer.seq, **pointer.versions(),
            "resolved_at": utc_now()}


def _run_pin(run: str) -> dict[str, Any] | None:
    uri = RunLayout(run).channel_json
    try:
        pin = json.loads(storage.read_text(uri))
    except storage.NotFoundError:
        return None
    except ValueError:
        raise InputError(f"{uri} is not a channel record: use a new --out run") from None
    if not isinstance(pin, dict) or not {"registry", "channel", *KINDS} <= set(pin):
        raise InputError(f"{uri} is not a channel record: use a new --out run")
    return pin
