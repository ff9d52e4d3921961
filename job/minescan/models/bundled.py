"""Where the bundled demo models live, and how a command picks its models."""

from __future__ import annotations

from pathlib import Path

#: the demo models shipped in the package (trained on synthetic chips by `make demo-models`)
DEMO_MODELS = Path(__file__).parent / "demo"


def resolve_models(discovery: str | None, impact: str | None) -> tuple[str, str]:
    """The user's model directories (local or gs://), or the bundled demo models."""
    return (
        str(discovery) if discovery else str(DEMO_MODELS / "discovery"),
        str(impact) if impact else str(DEMO_MODELS / "impact"),
    )


def load_models(discovery: str | None, impact: str | None):
    """The two verified model directories; each reads its Keras file only when a backend
    needs it (see `scan.backends`)."""
    from .card import verified_model_dir

    d_path, i_path = resolve_models(discovery, impact)
    return verified_model_dir(d_path, kind="discovery"), verified_model_dir(i_path, kind="impact")



def bundled_demo_hashes() -> frozenset[str]:
    """SHA-256 of the bundled demo models' weights, as their cards record them."""
    import json

    return frozenset(
        json.loads((DEMO_MODELS / kind / "model.json").read_text())["weights_sha256"]
        for kind in ("discovery", "impact")
    )


def is_bundled_demo(weights_sha256: str) -> bool:
    """Whether a model is one of the bundled demo models (trained on synthetic scenes)."""
    return weights_sha256 in bundled_demo_hashes()
