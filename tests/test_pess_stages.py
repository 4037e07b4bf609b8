import json
import shutil

import pyarrow as pa
import pytest
import yaml
from conftest import SHARED_DATA
from gen_tiny import TINY_PARAMS
from test_pess_model import tiny_extractor
from test_persona_data import PESS_FIXTURES

from flows import PROJECT_ROOT
from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.lib.extractor_eval import similarity_prf
from flows.lib.persona_data import load_persona_examples, split_examples
from flows.lib.persona_inference import character_lines, evenly_spaced, merge_sentences, window_personas
from flows.lib.pess_params import pess_config, sweep_runs, train_settings
from flows.lib.schemas import CHARACTER_PERSONAS, ESCONV_PERSONAS, SNIPPETS, read_table, write_table
from models.pess import SentenceScorer, SimilaritySets

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)

CORPUS = {"corpus": "synthetic", "paths": [str(PESS_FIXTURES / "synthetic_tiny.csv")], "include_partner": True,
          "seed": 13, "val": 0.2, "test": 0.2}


def snippet(snippet_id: str, char_id: str, scene: int, lines: list[str]) -> dict:
    return {"snippet_id": snippet_id, "char_id": char_id, "movie": "Heat", "scene": scene, "D": lines, "E": [],
            "O": [{"speaker": "COP", "text": "Freeze."}], "split": "train", "source": "screenplays"}


def write_snippets(path):
    rows = [
        snippet("s2", "/m/1|hero", 2, ["I never go back to prison.", "My crew is my family."]),
        snippet("s1", "/m/1|hero", 1, ["I am a professional thief.", "I never go back to prison."]),
        snippet("s3", "/m/2|cop", 1, ["  "]),
    ]
    return write_table(pa.Table.from_pylist(rows, schema=SNIPPETS), path, SNIPPETS)


@pytest.fixture(scope="module")
def scorer():
    return SentenceScorer()


def test_character_lines_in_scene_order_once_each(tmp_path):
    characters = character_lines(read_table(write_snippets(tmp_path / "snippets.parquet"), SNIPPETS))
    assert characters == [{"char_id": "/m/1|hero", "movie": "Heat",
                           "lines": ["I am a professional thief.", "I never go back to prison.", "My crew is my family."]}]


def test_evenly_spaced_keeps_ends():
    assert evenly_spaced(list(range(10)), 3) == [0, 4, 9]  # position 4.5 rounds half to even
    assert evenly_spaced([1, 2], 3) == [1, 2]
    assert evenly_spaced(list(range(5)), 0) == list(range(5))
    assert evenly_spaced(list(range(5)), 1) == [0]


def test_merge_sentences_drops_paraphrases(scorer):
    merged = merge_sentences([["I have two dogs.", "I love baking.", "I own two canines."], ["I own two canines."]], scorer, 0.7)
    assert merged == [["I have two dogs.", "I love baking."], ["I own two canines."]]


def test_similarity_prf_is_micro_averaged():
    gold = [["a", "b"], ["c", "d", "e"]]
    generated = [["x", "y", "z"], ["w"]]
    sets = [SimilaritySets([0, 1], [2], [], [0, 1]), SimilaritySets([], [0], [0, 1, 2], [-1, -1, -1])]
    scores = similarity_prf(gold, generated, sets)
    assert scores["similarity_p"] == pytest.approx(2 / 4)
    assert scores["similarity_r"] == pytest.approx(2 / 5)
    assert scores["similarity_f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)


def test_variants_zero_the_losses_they_drop():
    params = load_params()
    assert (pess_config(params, "base").lambda_completeness, pess_config(params, "base").lambda_consistency) == (0.0, 0.0)
    consistency = pess_config(params, "consistency")
    assert consistency.lambda_completeness == 0.0 and consistency.lambda_consistency == params["pess"]["loss"]["lambda_consistency"]
    assert pess_config(params, "full", tau=0.9).tau == 0.9
    with pytest.raises(PipelineInputError, match="pess variant 'both'; valid: base, completeness, consistency, full"):
        pess_config(params, "both")


@pytest.mark.parametrize("section, key, value, builder, message", [
    ("loss", "refresh_every", 0, pess_config, r"param 'pess.loss.refresh_every' must be >= 1, got 0$"),
    ("loss", "temperature", 0, pess_config, r"param 'pess.loss.temperature' must be in \(0, 1\], got 0$"),
    ("model", "cross_attention_init", "copy", pess_config,
     r"param 'pess.model.cross_attention_init' is 'copy'; valid: random, self_attention$"),
    ("loss", "decoder_token_dropout", 1, pess_config, r"param 'pess.loss.decoder_token_dropout' must be in \[0, 1\), got 1$"),
    ("train", "encoder_lr_scale", -0.1, train_settings, r"param 'pess.train.encoder_lr_scale' must be >= 0, got -0.1$"),
])
def test_out_of_range_settings_name_the_param(section, key, value, builder, message):
    params = load_params()
    params["pess"][section][key] = value
    with pytest.raises(PipelineInputError, match=message):
        builder(params)


def test_sweep_grid_trains_the_shared_run_once():
    params = load_params()
    params["pess"]["loss"]["tau"] = 0.7
    params["pess"]["sweep"].update(variants=["base", "full"], taus=[0.6, 0.7], seeds=[1, 2], steps=5)
    runs = sweep_runs(params)
    assert list(runs) == ["base-tau0.7-seed1", "full-tau0.7-seed1", "full-tau0.6-seed1",
                          "base-tau0.7-seed2", "full-tau0.7-seed2", "full-tau0.6-seed2"]
    assert runs["full-tau0.6-seed2"]["config"].tau == 0.6
    assert runs["full-tau0.6-seed2"]["settings"].seed == 2 and runs["base-tau0.7-seed1"]["settings"].steps == 5


def tiny_project(root):
    """A working directory for the PESS stages: the project's params with a tiny BART, tiny
    data under data/ (Synthetic-Persona-Chat, ESConv, one movie character)."""
    data = root / "shared"
    (data / "persona_chat").mkdir(parents=True)
    shutil.copy(PESS_FIXTURES / "synthetic_tiny.csv", data / "persona_chat")
    (data / "esconv").mkdir()
    shutil.copy(SHARED_DATA / "esconv" / "strategy.json", data / "esconv")
    (data / "esconv" / "train.txt").write_text((PESS_FIXTURES / "esconv_tiny.txt").read_text())
    (data / "esconv" / "valid.txt").write_text("")
    (data / "esconv" / "test.txt").write_text("")
    params = load_params(PROJECT_ROOT / "params.yaml")
    params["data"].update(root=str(data), source="screenplays")
    pess = params["pess"]
    pess.update(corpus="synthetic", files={"synthetic": ["persona_chat/synthetic_tiny.csv"]},
                split={"seed": 13, "val": 0.2, "test": 0.2, "tau": 0.7})
    # tau 0.6: the tiny train speakers' sentences reach cosine 0.59-0.69 to their gold persona, none 0.7
    pess["select"].update(tau=0.6, epochs=3, weight_decays=[1e-4], thresholds=[0.1, 0.3], max_sentences_grid=[2, 4])
    pess["model"].update(backbone="tiny-bart", max_source_len=64, max_target_len=24, max_sentence_len=12, tiny=TINY_PARAMS)
    pess["train"].update(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, seed=1, checkpoint_every=2, log_every=2, device="cpu")
    pess["eval"].update(max_examples=0, samples=1, bootstrap=50, pool_ks=[1, 2])
    pess["generate"].update(num_beams=1, batch_size=4)
    pess["apply"]["max_chunks"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write_snippets(root / "data" / "snippets_screenplays.parquet")
    return params


@pytest.mark.slow
def test_split_select_train_eval_apply_stages(tmp_path, monkeypatch):
    from flows.pess_apply import pess_apply_flow
    from flows.pess_eval import pess_eval_flow
    from flows.pess_select import pess_select_flow
    from flows.pess_split import pess_split_flow
    from flows.pess_train import pess_train_flow

    tiny_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSONAS_PARAMS", raising=False)
    split = pess_split_flow()
    assert split["sizes"] == {"test_seen": 2, "test_unseen": 2, "train": 4, "val": 2}
    assert split["leakage"]["test_unseen"]["paraphrase_in_train"] == 0.0  # measured on the result, not assumed

    selected = pess_select_flow()
    assert selected["train_speakers"] == 4 and selected["choice"]["threshold"] in (0.1, 0.3)
    assert (tmp_path / "artifacts/pess/selector.pt").exists()

    pess_train_flow()
    pess_train_flow("base")
    summary = json.loads((tmp_path / "metrics/pess_train.json").read_text())
    assert summary["steps"] == 4 and summary["train_examples"] == 4  # the train speakers of pess_split only
    assert (tmp_path / "dvclive/pess_train/metrics.json").exists()

    pess_eval_flow()
    table = json.loads((tmp_path / "metrics/pess_test.json").read_text())
    assert set(table) == {"protocol", "val", "seen_pool", "unseen_persona"}
    systems = {"retrieval", "pool_prior", "extractive", "select", "base", "full"}
    for split_name in ("seen_pool", "unseen_persona"):
        assert set(table[split_name]) == systems
        for scores in table[split_name].values():
            assert scores["n"] == 2
            for name in ("similarity_f1", "rouge_match_f1", "exact_f1", "grounding_rate"):
                low, high = scores[f"{name}_ci95"]
                assert 0.0 <= low <= scores[name] <= high <= 1.0, name
    assert table["unseen_persona"]["retrieval"]["similarity_f1"] == 0.0  # no held-out persona has a training paraphrase
    [sample] = json.loads((tmp_path / "reports/pess_eval_samples.json").read_text())
    assert set(sample["systems"]) == systems and sample["gold"]

    pess_apply_flow()
    seekers = read_table(tmp_path / "data/esconv_personas.parquet", ESCONV_PERSONAS).to_pylist()
    assert [(r["conversation_id"], r["seeker_turns"]) for r in seekers] == [("esconv-train-0000", 3), ("esconv-train-0001", 2)]
    assert all(r["windows"] == 1 for r in seekers)  # the selector reads every seeker utterance at once
    characters = read_table(tmp_path / "data/character_personas.parquet", CHARACTER_PERSONAS).to_pylist()
    assert [(c["char_id"], c["lines"]) for c in characters] == [("/m/1|hero", 3)]
    applied = json.loads((tmp_path / "metrics/pess_apply.json").read_text())
    assert applied["esconv_seekers"] == 2
    for group, rows in (("esconv_seekers", seekers), ("characters", characters)):
        grounding = applied["grounding"][group]
        assert grounding["n"] == len(rows) and 0.0 <= grounding["grounding_rate"] <= 1.0
        assert grounding["sentences_mean"] == pytest.approx(sum(len(r["persona"]) for r in rows) / len(rows), abs=1e-4)


def test_empty_evaluation_split_is_a_one_line_error():
    with pytest.raises(PipelineInputError, match=r"the 'val' split of pess.files is empty \(see pess.split\)$"):
        split_examples({**CORPUS, "val": 0.0}, "val")
    assignment = {e.example_id: "train" for e in load_persona_examples(**CORPUS)}
    with pytest.raises(PipelineInputError, match=r"has no split; rerun pess_split$"):
        split_examples(CORPUS, "train", 0, {key: value for key, value in list(assignment.items())[1:]})


def test_apply_without_extractor_is_a_one_line_error(tmp_path, monkeypatch):
    from flows.pess_apply import pess_apply_flow

    tiny_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSONAS_PARAMS", raising=False)
    with pytest.raises(PipelineInputError, match=r"artifacts/pess/selector\.pt: checkpoint not found$"):
        pess_apply_flow.fn()  # the flow's body alone: the error comes before any task


def test_windows_of_long_histories_cover_it_evenly(scorer):
    extractor = tiny_extractor(max_source_len=16).eval()
    turns = [("seeker", f"I have {n} dogs and {n} cats at home.") for n in range(12)]
    [(windows, persona)] = window_personas(extractor, scorer, [turns], True, 3, 0.7, 8)
    assert windows == 3
    assert len(persona) == len(set(persona))
