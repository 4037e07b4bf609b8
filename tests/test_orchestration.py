"""Restartable work and corrupt inputs: the result cache the Table 2 sweep keeps, through a real Prefect run,
one-line errors for torn checkpoints and damaged Parquet, and no pickle of untrusted data."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from prefect import flow
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows import PROJECT_ROOT
from flows.lib.config import write_json
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import fingerprint, refreshed_if_missing, stage_task
from flows.lib.schemas import TROPES, read_table, write_table
from models.runtime import load_checkpoint, save_checkpoint


def executions(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@stage_task
def count_words(text_path: str, text_hashes: dict[str, str], counts_path: str, log_path: str) -> str:
    """A stage in miniature: one input, one atomic output, and a log line per real execution."""
    with open(log_path, "a") as log:
        log.write("executed\n")
    write_json({"words": len(Path(text_path).read_text().split())}, counts_path)
    return counts_path


@flow
def count_words_flow(text_path: str, counts_path: str, log_path: str) -> str:
    return refreshed_if_missing(count_words, [counts_path])(
        text_path=text_path,
        text_hashes=fingerprint(text_path),
        counts_path=counts_path,
        log_path=log_path,
    )


@stage_task(retries=2)
def copy_tropes(tropes_path: str, tropes_hashes: dict[str, str], copy_path: str, log_path: str) -> str:
    with open(log_path, "a") as log:
        log.write("executed\n")
    write_table(read_table(tropes_path, TROPES), copy_path, TROPES)
    return copy_path


@flow
def copy_tropes_flow(tropes_path: str, copy_path: str, log_path: str) -> str:
    return refreshed_if_missing(copy_tropes, [copy_path])(
        tropes_path=tropes_path,
        tropes_hashes=fingerprint(tropes_path),
        copy_path=copy_path,
        log_path=log_path,
    )


@pytest.fixture
def isolated_results(tmp_path):
    """Persist task results under tmp, not in the project's .prefect/storage."""
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: tmp_path / "results"}):
        yield tmp_path / "results"


def tropes_table(rows: int = 12) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "trope": f"trope_{i}",
                "title": f"Trope{i}",
                "description": "word " * (i + 1),
                "description_kind": "full",
                "laconic": "short",
                "url": f"https://tvtropes.org/pmwiki/pmwiki.php/Main/Trope{i}",
                "source": "test",
            }
            for i in range(rows)
        ],
        schema=TROPES,
    )


@pytest.mark.slow
def test_second_call_is_cached_and_a_deleted_output_forces_recompute(tmp_path, isolated_results):
    text, counts, log = tmp_path / "text.txt", tmp_path / "counts.json", tmp_path / "executions.log"
    text.write_text("one two three")
    arguments = dict(text_path=str(text), counts_path=str(counts), log_path=str(log))

    assert count_words_flow(**arguments) == str(counts)
    assert executions(log) == 1 and counts.read_text() == '{\n  "words": 3\n}\n'
    assert any(isolated_results.iterdir()), "the task result was not persisted"

    assert count_words_flow(**arguments) == str(counts)
    assert executions(log) == 1, "same inputs and source: the persisted result must be reused"

    counts.unlink()
    assert count_words_flow(**arguments) == str(counts)
    assert executions(log) == 2 and counts.exists(), "a missing output must force a recompute"

    text.write_text("one two three four")  # same path, new content: the fingerprint changes
    count_words_flow(**arguments)
    assert executions(log) == 3 and '"words": 4' in counts.read_text()


STAGE_MODULE = """
from pathlib import Path
from flows.lib.orchestration import stage_task

def greeting():
    return "{greeting}"

@stage_task
def greet(out_path: str, log_path: str) -> str:
    with open(log_path, "a") as log:
        log.write("executed\\n")
    Path(out_path).write_text(greeting())
    return out_path
"""


def load_stage_module(path: Path, greeting: str):
    path.write_text(STAGE_MODULE.format(greeting=greeting))
    spec = importlib.util.spec_from_file_location(f"stage_{greeting}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@flow
def call_stage_flow(stage, out_path: str, log_path: str) -> str:
    return refreshed_if_missing(stage, [out_path])(out_path=out_path, log_path=log_path)


@pytest.mark.slow
def test_an_edited_helper_beside_the_task_invalidates_its_result(tmp_path, isolated_results):
    out, log = tmp_path / "greeting.txt", tmp_path / "executions.log"
    stage_file = tmp_path / "stage.py"
    for greeting, expected_executions in [("hello", 1), ("hello", 1), ("bonjour", 2)]:
        stage = load_stage_module(stage_file, greeting).greet
        call_stage_flow(stage, out_path=str(out), log_path=str(log))
        assert executions(log) == expected_executions
    assert out.read_text() == "bonjour", "the task's own lines did not change, its helper did"


@pytest.mark.slow
def test_bad_input_fails_once_with_one_line_and_leaves_outputs_intact(tmp_path, isolated_results):
    tropes, copy, log = tmp_path / "tropes.parquet", tmp_path / "copy.parquet", tmp_path / "executions.log"
    write_table(tropes_table(), tropes, TROPES)
    copy_tropes_flow(tropes_path=str(tropes), copy_path=str(copy), log_path=str(log))
    before = copy.read_bytes()

    tropes.write_bytes(tropes.read_bytes()[:-40])  # torn footer: a new fingerprint, so a real rerun
    with pytest.raises(PipelineInputError) as error:
        copy_tropes_flow(tropes_path=str(tropes), copy_path=str(copy), log_path=str(log))
    assert "\n" not in str(error.value) and str(error.value).startswith(f"{tropes}: not a readable Parquet")
    assert executions(log) == 2, "bad input must not be retried (the task allows 2 retries)"
    assert copy.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".log") == ["copy.parquet", "results", "tropes.parquet"]


def test_truncated_checkpoint_is_a_one_line_error_and_siblings_survive(tmp_path):
    model = torch.nn.Linear(4, 3)
    payload = {"config": {"in": 4, "out": 3}, "model": model.state_dict(), "step": 7}
    good, torn = tmp_path / "good.pt", tmp_path / "torn.pt"
    save_checkpoint(payload, good)
    save_checkpoint(payload, torn)
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    torn_bytes, good_bytes = torn.read_bytes(), good.read_bytes()

    with pytest.raises(PipelineInputError) as error:
        load_checkpoint(torn)
    assert "\n" not in str(error.value) and str(error.value).startswith(f"{torn}: unreadable checkpoint")
    assert torn.read_bytes() == torn_bytes, "the loader must not touch the file it failed on"
    assert good.read_bytes() == good_bytes
    for mmap in (False, True):  # mapped: the config reader of gen_eval reads no weights
        loaded = load_checkpoint(good, mmap=mmap)
        assert loaded["step"] == 7 and torch.equal(loaded["model"]["weight"], model.weight.detach())


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint({"model": torch.nn.Linear(2, 2).state_dict(), "step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint({"step": 2, "not_a_tensor": lambda: None}, path)  # fails mid-serialisation
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],
        lambda data: data[:-8] + b"XXXXXXXX",  # footer length and magic overwritten
        lambda data: b"not parquet at all\n" * 20,
    ],
    ids=["empty", "truncated", "bad-magic", "text"],
)
def test_corrupt_parquet_is_a_one_line_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "tropes.parquet"
    write_table(tropes_table(), path, TROPES)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(PipelineInputError) as error:
        read_table(path, TROPES)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: not a readable Parquet file")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_damage_to_parquet_reads_or_fails_with_pipeline_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "tropes.parquet"
    write_table(tropes_table(), path, TROPES)
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    try:
        table = read_table(path, TROPES)
    except PipelineInputError as error:
        assert "\n" not in str(error) and str(path) in str(error)
    else:
        assert table.schema.equals(TROPES)


def unsafe_loads(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls that unpickle: pickle/dill/joblib loads, pandas.read_pickle, numpy.load with
    allow_pickle=True, torch.load without weights_only=True."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if (
            (name.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle") and node.func.attr in ("load", "loads"))
            or node.func.attr in ("read_pickle", "Unpickler")
            or (name in ("np.load", "numpy.load") and keywords.get("allow_pickle") == "True")
            or (name == "torch.load" and keywords.get("weights_only") != "True")
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_unsafe_loads_finds_what_it_should():
    calls = "pickle.load(f)\ntorch.load(Path(p), map_location='cpu')\ntorch.load(p, weights_only=True)\n"
    calls += "np.load(p, allow_pickle=True)\nnp.load(p)\npd.read_pickle(p)\n"
    assert [line for line, _ in unsafe_loads(ast.parse(calls))] == [1, 2, 4, 6]


def test_no_pickle_of_untrusted_data_in_sources():
    """Pickles run code when loaded: checkpoints go through torch.load(weights_only=True)."""
    offenders = [
        f"{source.relative_to(PROJECT_ROOT)}:{line}: {call}"
        for folder in ("flows", "crawlers", "models")
        for source in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        for line, call in unsafe_loads(ast.parse(source.read_text()))
    ]
    assert not offenders, "unsafe deserialisation:\n" + "\n".join(offenders)
