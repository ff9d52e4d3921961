"""Where the bundled demo models live, and how a command picks its models."""

from __future__ import annotations

from pathlib import Path

#: the demo models shipped in the package (trained on synthetic chips by `make demo-models`)
DEMO_MODELS = Path(__file__).parent / "demo_models"


def resolve_models(discovery: str | None, impact: str | None) -> tuple[Path, Path]:
    """The user's model directories, or the bundled demo models where none is given."""
    return (
        Path(discovery) if discovery else DEMO_MODELS / "discovery",
        Path(impact) if impact else DEMO_MODELS / "impact",
    )


def load_models(discovery: str | None, impact: str | None):
    from .modeldir import load_model_dir

    d_path, i_path = resolve_models(discovery, impact)
    return load_model_dir(d_path, kind="discovery"), load_model_dir(i_path, kind="impact")
