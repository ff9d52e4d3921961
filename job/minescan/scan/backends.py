"""Who runs the two networks: TensorFlow (the reference, and the GPU path), ONNX Runtime or
OpenVINO.

All run the same Keras file. The other runtimes' models are *derived* from it: only after the model
card's SHA-256 check has passed, converted once, and cached under that hash in the user's
cache directory (written aside, then renamed into place). Each cached entry records the
hashes of its own files, which are checked again before every use, so a scan never runs a
network that the model card does not vouch for; a damaged entry is derived anew.

OpenVINO's model comes through a TensorFlow SavedModel and `Core.read_model`, not through
`openvino.convert_model`: that converter sends usage telemetry unless the user opted out.
Inference precision is pinned to float32 (OpenVINO picks bfloat16 by default on CPUs that
have it), and weights are saved uncompressed, so the derived network is exact: the tests
hold every backend's stitched output to whole-array TensorFlow inference within 1e-5.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, ModelError
from ..storage import sha256_file

if TYPE_CHECKING:
    from collections.abc import Iterator

    import keras

    from ..models.card import LoadedModel

log = logging.getLogger(__name__)

#: every backend, fastest first on CPU at the scan's sub-tile size as measured by
#: `minescan bench backends --size 2478` on a quiet machine (docs/BENCHMARKS.md: discovery at
#: 0.80, 0.57 and 0.23 of numpy's GEMM); `auto` takes the first one that is installed
BACKENDS = ("openvino", "tensorflow", "onnxruntime")
#: what `--backend` and `ScanConfig.backend` accept
BACKEND_CHOICES = ("auto", *BACKENDS)
#: the Python module each backend needs (ONNX Runtime also needs tf2onnx to derive its model)
_MODULES = {"onnxruntime": ("onnxruntime", "tf2onnx"), "openvino": ("openvino",), "tensorflow": ("tensorflow",)}
#: where derived models are cached when neither MINESCAN_CACHE_DIR nor XDG_CACHE_HOME is set
_DEFAULT_CACHE = Path("~/.cache/minescan")
_RECORD = "derived.json"


def installed_backends() -> tuple[str, ...]:
    """The backends whose runtime can be imported here, fastest first."""
    return tuple(
        name for name in BACKENDS if all(importlib.util.find_spec(m) is not None for m in _MODULES[name])
    )


def resolve_backend(name: str) -> str:
    """`auto` → the fastest installed backend; a named one must be installed."""
    installed = installed_backends()
    if name == "auto":
        if not installed:
            raise InputError("no inference backend is installed: pip install 'minescan[cpu]'")
        return installed[0]
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)} or auto")
    if name not in installed:
        raise InputError(
            f"backend {name} is not installed here: pip install 'minescan[cpu]', or pass "
            f"--backend {installed[0] if installed else 'tensorflow'}"
        )
    return name


class Network:
    """One network, callable on a float32 batch, whichever backend runs it.

    `backend` says who runs it; calls must come from one thread at a time. A batch is NHWC
    unless the caller passes `channels_first=True` for NCHW; `channels_first` on the
    network says which layout its runtime takes without a transposing copy (the scan's
    prepare step writes that one). The output is NHWC either way.
    """

    def __init__(self, backend: str, call: Callable[[np.ndarray], np.ndarray], *, channels_first: bool = False) -> None:
        self.backend = backend
        self.channels_first = channels_first
        self._call = call

    def __call__(self, batch: np.ndarray, *, channels_first: bool = False) -> np.ndarray:
        if channels_first != self.channels_first:
            batch = np.moveaxis(batch, 1, -1) if channels_first else np.moveaxis(batch, -1, 1)
        return self._call(np.ascontiguousarray(batch, dtype=np.float32))


def load_network(model: "LoadedModel", backend: str, *, mixed_precision: bool = False) -> Network:
    """The network of a verified model directory, run by `backend` (resolved, installed)."""
    if mixed_precision and backend != "tensorflow":
        raise InputError("mixed precision runs on the tensorflow backend only: pass --backend tensorflow")
    if backend == "tensorflow":
        return tensorflow_network(model.model, mixed_precision=mixed_precision)
    if backend == "openvino":
        return _openvino_network(model)
    if backend == "onnxruntime":
        return _onnxruntime_network(model)
    raise InputError(f"unknown backend {backend!r}")


# ---------------------------------------------------------------- TensorFlow


def tensorflow_network(model: "keras.Model", *, mixed_precision: bool = False) -> Network:
    """A `tf.function` over `model` that takes any batch and spatial size without retracing.

    The function lets grappler fuse conv + bias + relu, which roughly halves the first
    layer's peak memory on CPU compared with eager calls. With `mixed_precision` the
    network computes in float16 (float32 weights and softmax): a GPU option whose largest
    difference from float32 is measured by `minescan bench precision`.
    """
    import tensorflow as tf

    if mixed_precision:
        model = _float16_copy(model)
    spec = tf.TensorSpec(shape=(None, *model.input_shape[1:]), dtype=tf.float32)
    fn = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), input_signature=[spec])
    return Network("tensorflow", lambda batch: fn(batch).numpy())


def _float16_copy(model: "keras.Model") -> "keras.Model":
    """The same network under Keras' `mixed_float16` policy, its last layer kept in float32."""
    import keras

    last = model.layers[-1].name

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name == last else "mixed_float16"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def gpu_free_bytes(backend: str) -> int | None:
    """Free memory of the GPU TensorFlow will run on, or None when the scan runs on CPU.

    Read from nvidia-smi before TensorFlow touches the device (it then reserves most of it).
    """
    if backend != "tensorflow" or shutil.which("nvidia-smi") is None:
        return None
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None  # a CPU-only TensorFlow on a GPU node
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", "0"],
                              capture_output=True, text=True, timeout=30, check=True)
        return int(proc.stdout.split()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- OpenVINO


def _openvino_network(model: "LoadedModel") -> Network:
    import openvino as ov

    from importlib.metadata import version

    core = ov.Core()
    # The discovery network takes NCHW, the layout GDAL reads: the scan's prepare step then
    # writes band planes without transposing, and OpenVINO reorders NCHW into its blocked
    # layout faster than NHWC (0.437 s against 0.467 s on a 2478² sub-tile, identical
    # output; docs/BENCHMARKS.md). The impact network's patches stay NHWC.
    channels_first = model.card.kind == "discovery"
    with derived_model(model, "openvino", version("openvino"), _derive_openvino) as entry:
        network = core.read_model(entry / "model.xml")
        if channels_first:
            from openvino.preprocess import PrePostProcessor

            ppp = PrePostProcessor(network)
            ppp.input().tensor().set_layout(ov.Layout("NCHW"))
            ppp.input().model().set_layout(ov.Layout("NHWC"))
            network = ppp.build()
        compiled = core.compile_model(
            network,
            "CPU",
            # float32, not the bfloat16 OpenVINO prefers where the CPU has it: exactness first
            {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        )
    request = compiled.create_infer_request()

    def call(batch: np.ndarray) -> np.ndarray:
        # the output tensor is the request's own buffer: copy it before the next call reuses it
        return np.array(request.infer({0: batch})[0], dtype=np.float32, copy=True)

    return Network("openvino", call, channels_first=channels_first)


def _derive_openvino(keras_model: "keras.Model", out: Path) -> None:
    import openvino as ov

    saved = out / "savedmodel"
    keras_model.export(str(saved), format="tf_saved_model", verbose=False)
    ov.save_model(ov.Core().read_model(str(saved)), str(out / "model.xml"), compress_to_fp16=False)
    shutil.rmtree(saved)


# ---------------------------------------------------------------- ONNX Runtime


def _onnxruntime_network(model: "LoadedModel") -> Network:
    from importlib.metadata import version

    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Without the arena each call maps fresh pages (more system time: 5.5 s against 3.1 s of
    # CPU on a 4096² scene), but with it the tile loop took 35 % more memory than the budget's
    # model allows, because sub-tiles of different sizes leave the arena fragmented.
    options.enable_cpu_mem_arena = False
    # idle workers sleep instead of spinning: the reader and impact threads need those cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with derived_model(model, "onnxruntime", version("onnxruntime"), _derive_onnx) as entry:
        session = onnxruntime.InferenceSession(str(entry / "model.onnx"), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return Network("onnxruntime", lambda batch: session.run(None, {name: batch})[0])


def _derive_onnx(keras_model: "keras.Model", out: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    spec = tf.TensorSpec((None, *keras_model.input_shape[1:]), tf.float32, name="input")
    fn = tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])
    tf2onnx.convert.from_function(fn, input_signature=[spec], opset=17, output_path=str(out / "model.onnx"))


# ---------------------------------------------------------------- derived-model cache


def cache_dir() -> Path:
    """Root of minescan's cache: $MINESCAN_CACHE_DIR, else $XDG_CACHE_HOME/minescan, else ~/.cache/minescan."""
    if os.environ.get("MINESCAN_CACHE_DIR"):
        return Path(os.environ["MINESCAN_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "minescan"
    return _DEFAULT_CACHE.expanduser()


@contextmanager
def derived_model(
    model: "LoadedModel", backend: str, version: str, derive: Callable[["keras.Model", Path], None]
) -> "Iterator[Path]":
    """A directory holding `backend`'s model derived from `model`'s verified Keras file.

    Cached at `cache_dir()/derived/<weights sha256>/<backend>-<version>/`; a cache that
    cannot be written (read-only home in a pod) falls back to a temporary directory that
    is removed once the caller has loaded the model.
    """
    source = model.card.weights_sha256
    entry = cache_dir() / "derived" / source / f"{backend}-{version}"
    if _entry_is_valid(entry, source):
        yield entry
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    except OSError as exc:
        log.warning("derived-model cache not writable; deriving into a temporary directory",
                    extra={"cache": str(entry.parent), "error": str(exc)})
        with tempfile.TemporaryDirectory(prefix="minescan-derived-") as tmp:
            _derive_into(model, backend, version, derive, Path(tmp))
            yield Path(tmp)
        return
    try:
        _derive_into(model, backend, version, derive, staging)
        _publish(staging, entry, source)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    yield entry


def _derive_into(model, backend, version, derive, out: Path) -> None:
    log.info("deriving %s model from %s", backend, model.card.ref,
             extra={"backend": backend, "model": model.card.ref})
    derive(model.model, out)
    files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}
    record = {"source_sha256": model.card.weights_sha256, "source": model.card.ref,
              "backend": backend, "backend_version": version, "files": files}
    (out / _RECORD).write_text(json.dumps(record, indent=2) + "\n")


def _publish(staging: Path, entry: Path, source: str) -> None:
    """Rename the staging directory into place; replace an entry only if it is damaged."""
    if entry.exists():
        if _entry_is_valid(entry, source):
            return  # another process derived the same model meanwhile
        log.warning("replacing a damaged derived-model cache entry", extra={"entry": str(entry)})
        aside = entry.with_name(f".{entry.name}.damaged-{uuid.uuid4().hex[:8]}")
        os.replace(entry, aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(staging, entry)
    except OSError:
        if not _entry_is_valid(entry, source):  # lost a race to a process that wrote junk
            raise ModelError(f"cannot publish the derived model at {entry}") from None


def _entry_is_valid(entry: Path, source: str) -> bool:
    """True if `entry` records `source` and every file it lists has its recorded hash."""
    try:
        record = json.loads((entry / _RECORD).read_text())
        files = record["files"]
        return record["source_sha256"] == source and bool(files) and all(
            sha256_file(entry / name) == digest for name, digest in files.items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False
