"""A real `dvc repro` of pess_split -> pess_select, pess_train, pess_train_base -> pess_eval, pess_apply in a temporary
git repo, with a tiny BART and tiny data: the stages' params, deps and outs are wired as dvc.yaml says, a
second repro is a no-op, and the frozen pess_sweep stays out of the default DAG."""
import json
import re
import shutil
import subprocess

import pyarrow as pa
import pytest
import yaml
from conftest import SHARED_DATA
from gen_tiny import TINY_PARAMS
from orchestration_harness import BIN, dag_repo, prefect_env, prefect_server  # noqa: F401 (fixture)
from test_persona_data import PESS_FIXTURES

from flows.lib.schemas import CHARACTER_PERSONAS, ESCONV_PERSONAS, SNIPPETS, read_table, write_table

pytestmark = pytest.mark.slow

STAGES = ["pess_split", "pess_select", "pess_train", "pess_train_base", "pess_eval", "pess_apply", "pess_sweep"]


def tiny_repo(path):
    repo = dag_repo(path, STAGES, "tiny-data")
    data = repo / "tiny-data"
    (data / "persona_chat").mkdir(parents=True)
    shutil.copy(PESS_FIXTURES / "synthetic_tiny.csv", data / "persona_chat" / "synthetic_tiny.csv")
    (data / "esconv").mkdir()
    shutil.copy(SHARED_DATA / "esconv" / "strategy.json", data / "esconv")
    dialogues = (PESS_FIXTURES / "esconv_tiny.txt").read_text().splitlines(keepends=True)
    for name, lines in (("train.txt", dialogues), ("valid.txt", dialogues[:1]), ("test.txt", dialogues[1:])):
        (data / "esconv" / name).write_text("".join(lines))
    snippet = {"snippet_id": "s1", "char_id": "/m/1|hero", "movie": "Heat", "scene": 1, "E": [], "O": [],
               "D": ["I am a professional thief.", "My crew is my family."], "split": "train", "source": "screenplays"}
    write_table(pa.Table.from_pylist([snippet], schema=SNIPPETS), repo / "data" / "snippets_screenplays.parquet", SNIPPETS)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["source"] = "screenplays"
    pess = params["pess"]
    pess["files"]["synthetic"] = ["persona_chat/synthetic_tiny.csv"]
    pess["split"].update(val=0.2, test=0.2)
    pess["select"].update(tau=0.6, epochs=3, weight_decays=[1e-4], thresholds=[0.1, 0.3], max_sentences_grid=[2, 4])
    pess["model"].update(backbone="tiny-bart", max_source_len=32, max_target_len=16, max_sentence_len=8,
                         tiny=TINY_PARAMS)
    pess["train"].update(steps=3, batch_size=4, warmup_steps=1, checkpoint_every=2, log_every=1, device="cpu")
    pess["eval"].update(max_examples=4, samples=2, bootstrap=50, pool_ks=[1, 2])
    pess["apply"]["max_chunks"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # dvclive reads the git revision: a project checkout has commits, so this copy has one too
    for command in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=repo, check=True)
    return repo


def dvc(repo, env, *args) -> str:
    done = subprocess.run([BIN / "dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_pess_stages_repro_in_a_fresh_repo(tmp_path, prefect_server):  # noqa: F811
    api, home = prefect_server
    env = prefect_env(home, PREFECT_API_URL=api)
    repo = tiny_repo(tmp_path / "repo")
    output = dvc(repo, env, "repro")
    assert sorted(re.findall(r"Running stage '([^']+)'", output)) == [
        "pess_apply", "pess_eval", "pess_select", "pess_split", "pess_train", "pess_train_base"]
    assert json.loads((repo / "metrics/pess_train.json").read_text())["steps"] == 3
    base = json.loads((repo / "metrics/pess_train_base.json").read_text())["config"]
    assert base["lambda_completeness"] == base["lambda_consistency"] == 0.0
    assert (repo / "artifacts/pess/base/model.pt").exists()
    assert (repo / "artifacts/pess/checkpoints/last.pt").exists()
    table = json.loads((repo / "metrics/pess_test.json").read_text())
    assert table["protocol"]["speakers"] == {"val": 2, "test_seen": 2, "test_unseen": 2}
    assert json.loads((repo / "metrics/pess_split.json").read_text())["sizes"]["train"] == 4
    assert len(read_table(repo / "data/esconv_personas.parquet", ESCONV_PERSONAS)) == 4  # 2 + 1 + 1 dialogues
    assert read_table(repo / "data/character_personas.parquet", CHARACTER_PERSONAS).column("char_id").to_pylist() == ["/m/1|hero"]
    assert "Data and pipelines are up to date" in dvc(repo, env, "status")  # the frozen sweep included
    assert not re.findall(r"Running stage", dvc(repo, env, "repro"))
