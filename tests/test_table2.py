import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from amn_tiny import TINY_MODEL, tiny_settings, write_description_cache, write_tiny_dataset
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.table2 import METRICS, summarise, sweep_plan


def test_summary_is_mean_and_sample_std_over_seeds():
    runs = [{"variant": "attn3", "seed": s, "test": {m: acc for m in METRICS}} for s, acc in enumerate([0.5, 0.7, 0.9])]
    runs.append({"variant": "b", "seed": 0, "test": {m: 0.4 for m in METRICS}})
    table = summarise(runs)
    assert table["attn3"]["seeds"] == [0, 1, 2]
    assert table["attn3"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert table["attn3"]["f1_macro"]["std"] == pytest.approx(0.2)
    assert table["b"]["accuracy"] == {"mean": pytest.approx(0.4), "std": 0.0}


def test_sweep_plan_defaults_to_every_preset_and_checks_seeds():
    params = load_params()
    variants, seeds = sweep_plan(params)
    assert variants == list(params["amn"]["variants"]) and len(variants) == 16 and seeds == [0, 1, 2]
    params["sweep"]["seeds"] = "0,1"
    with pytest.raises(PipelineInputError, match="sweep.seeds"):
        sweep_plan(params)


@pytest.mark.slow
def test_two_variant_sweep_on_a_local_dask_cluster(tmp_path, monkeypatch):
    paths = write_tiny_dataset(tmp_path / "data")
    paths["snippets"].rename(tmp_path / "data" / "snippets_tiny.parquet")
    write_description_cache(paths["tropes"], tmp_path / "data" / "embeddings" / "descriptions.parquet")
    params = load_params()
    params["data"]["source"] = "tiny"
    params["amn"]["model"] = TINY_MODEL
    params["amn"]["variants"] = {
        "tiny_ks": {"encoder": "attn", "inputs": "3", "triplet": "tropetrip500", "memory": "ks", "n_diag": 4},
        "tiny_baseline": {"encoder": "baseline", "inputs": "char", "triplet": "none", "memory": "none", "n_diag": 1},
    }
    params["train"] = {**tiny_settings(max_epochs=2).__dict__, "device": "cpu"}
    params["sweep"].update(variants="all", seeds=[0, 1, 2], dask_address=None, n_workers=2, threads_per_worker=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(tmp_path / "results"))  # Dask workers inherit it
    from flows.table2 import table2_flow

    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: tmp_path / "results"}):
        table = table2_flow()
    assert json.loads((tmp_path / "metrics" / "table2.json").read_text()) == table
    assert list(table) == ["tiny_ks", "tiny_baseline"]
    for row in table.values():
        assert row["seeds"] == [0, 1, 2]
        assert set(row) == {"seeds", *METRICS}
        assert all(0.0 <= row[m]["mean"] <= 1.0 and row[m]["std"] >= 0.0 for m in METRICS)
    for variant in table:
        for seed in (0, 1, 2):
            assert (tmp_path / "artifacts" / "table2" / variant / f"seed{seed}" / "model.pt").exists()

    # `python -m flows.table2` (as DVC runs it) must find every run in the Prefect cache, from the
    # Dask workers too: with the checkpoints gone, a cache miss would retrain and rewrite model.pt.
    models = sorted((tmp_path / "artifacts" / "table2").glob("*/seed*/model.pt"))
    before = {path: path.stat().st_mtime_ns for path in models}
    for path in models:
        shutil.rmtree(path.parent / "checkpoints", ignore_errors=True)
    rerun = subprocess.run([sys.executable, "-m", "flows.table2"], cwd=tmp_path, env=os.environ.copy(),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {path: path.stat().st_mtime_ns for path in models} == before
    assert json.loads((tmp_path / "metrics" / "table2.json").read_text()) == table
