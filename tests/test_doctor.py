"""`personas doctor` on this machine, and on broken copies of what it checks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml

from flows import PROJECT_ROOT
from flows.cli import main
from flows.doctor import FAIL, OK, WARN, check_data, check_glove, check_gpu, check_offline_environment, check_pins


@pytest.mark.slow
def test_healthy_machine_passes_from_the_console_script():
    doctor = subprocess.run(
        [Path(sys.executable).parent / "personas", "doctor"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"  {FAIL}" not in doctor.stdout and doctor.stdout.rstrip().endswith("Ready to run.")
    for subject in ("packages:", "offline sentence model:", "GloVe vectors:", "data:", "GPU:", "environment:"):
        assert subject in doctor.stdout


def test_broken_data_root_fails_and_names_it(tmp_path, capsys):
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["root"] = "no-such-data"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    assert main(["doctor", "--params", str(params_file)]) == 1
    out = capsys.readouterr().out
    assert f"{FAIL}  data: data.root in {params_file} is 'no-such-data', and {tmp_path / 'no-such-data'} is not a folder" in out
    assert out.rstrip().endswith("1 problem to fix before the pipeline can run.")


def test_missing_params_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["doctor", "--params", str(tmp_path / "absent.yaml")]) == 2
    assert capsys.readouterr().err == f"personas doctor: error: {tmp_path / 'absent.yaml'}: params file not found\n"


def test_each_missing_data_dependency_is_named(tmp_path):
    root = tmp_path / "data"
    (root / "cmu_tvtropes").mkdir(parents=True)
    (root / "cmu_tvtropes" / "tvtropes.clusters.txt").write_text("trope\t{}\n")
    dvc_file = tmp_path / "dvc.yaml"
    dvc_file.write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "ingest": {
                        "cmd": "python -m flows.ingest",
                        "deps": [
                            "${data.root}/cmu_tvtropes/tvtropes.clusters.txt",
                            "${data.root}/imsdb_scripts/scripts",
                            "flows/ingest.py",
                        ],
                    }
                }
            }
        )
    )
    findings = check_data({"data": {"root": "data"}}, tmp_path / "params.yaml", dvc_file)
    assert [(f.level, f.message.split(" is missing")[0]) for f in findings] == [
        (FAIL, f"data: {root / 'imsdb_scripts' / 'scripts'}")
    ]
    (root / "imsdb_scripts" / "scripts").mkdir(parents=True)
    assert [f.level for f in check_data({"data": {"root": "data"}}, tmp_path / "params.yaml", dvc_file)] == [OK]


def test_pins_report_wrong_and_missing_packages(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[project]\n"
        'dependencies = ["prefect==0.0.1", "no-such-package-for-doctor>=1", "pyyaml>=6", "sqlalchemy[asyncio]>=2.0"]\n'
        "[project.optional-dependencies]\n"
        'dev = ["pytest<1"]\n'
    )
    findings = check_pins(pyproject)
    by_level = {level: [f.message for f in findings if f.level == level] for level in (OK, WARN, FAIL)}
    assert by_level[OK] == ["packages: 3 installed versions match the pins in pyproject.toml"]  # greenlet via the extra
    assert [message.split(" (pip")[0] for message in by_level[FAIL]] == [
        "prefect 3.8.8 is installed, but pyproject.toml needs prefect==0.0.1",
        "no-such-package-for-doctor is not installed; pyproject.toml needs no-such-package-for-doctor>=1",
    ]
    assert len(by_level[WARN]) == 1 and by_level[WARN][0].startswith("pytest ")


def test_torn_or_mismatched_glove_files_fail(tmp_path):
    np.save(tmp_path / "glove_6B_50d_emb.npy", np.ones((10, 50), dtype=np.float32))
    pq.write_table(pa.table({"word": [f"w{i}" for i in range(10)]}), tmp_path / "glove_6B_index.parquet")
    assert [(f.level, f.message) for f in check_glove(tmp_path)] == [(OK, f"GloVe vectors: 10 words x 50 dims in {tmp_path}")]

    pq.write_table(pa.table({"word": ["w0"]}), tmp_path / "glove_6B_index.parquet")
    assert "lists 1 words for 10 vectors" in check_glove(tmp_path)[0].message

    vectors = tmp_path / "glove_6B_50d_emb.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])
    (finding,) = check_glove(tmp_path)
    assert finding.level == FAIL and "unreadable file" in finding.message


def test_online_environment_warns(monkeypatch):
    assert check_offline_environment()[0].level == OK
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    (finding,) = check_offline_environment()
    assert finding.level == WARN and "HF_HUB_OFFLINE='0' (expected 1)" in finding.message


def test_a_cuda_device_param_needs_a_gpu():
    (finding,) = check_gpu({"train": {"device": "cuda"}})
    if torch.cuda.is_available():
        assert finding.level == OK and torch.cuda.get_device_name(0) in finding.message
    else:
        assert finding.level == FAIL and "params.yaml asks for train.device: cuda" in finding.message
        assert check_gpu({"train": {"device": "auto"}})[0].level == WARN
