import json
from dataclasses import asdict

import pyarrow as pa
import pytest
from test_pess_model import TINY, tiny_extractor
from test_persona_data import PESS_FIXTURES

from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.pess_apply import apply_pess, character_lines, evenly_spaced, infer_personas, merge_sentences
from flows.pess_eval import evaluate_pess, similarity_prf
from flows.pess_sweep import sweep_runs
from flows.pess_train import TrainSettings, pess_config, train_pess, train_settings
from flows.lib.schemas import CHARACTER_PERSONAS, ESCONV_PERSONAS, SNIPPETS, read_table, write_table
from models.pess import PessConfig, SentenceScorer, SimilaritySets

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
    assert runs["full-tau0.6-seed2"]["config"]["tau"] == 0.6
    assert runs["full-tau0.6-seed2"]["settings"]["seed"] == 2 and runs["base-tau0.7-seed1"]["settings"]["steps"] == 5


@pytest.mark.slow
def test_train_eval_apply_stage_bodies(tmp_path, scorer):
    paths = {name: str(tmp_path / name) for name in ("model.pt", "last.pt", "train.json", "live", "eval.json",
                                                     "samples.json", "esconv.parquet", "chars.parquet", "apply.json")}
    settings = TrainSettings(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, seed=1, checkpoint_every=2, log_every=2, device="cpu")
    train_pess(CORPUS, {}, asdict(PessConfig(**TINY)), asdict(settings), paths["model.pt"], paths["last.pt"],
               paths["train.json"], paths["live"])
    summary = json.loads(open(paths["train.json"]).read())
    assert summary["steps"] == 4 and summary["train_examples"] == 6
    assert (tmp_path / "live" / "metrics.json").exists()

    evaluate_pess(paths["model.pt"], {}, CORPUS, {}, "test", 0, 0.7, 1, 4, 1, paths["eval.json"], paths["samples.json"])
    metrics = json.loads(open(paths["eval.json"]).read())
    assert metrics["split"] == "test" and metrics["examples"] == 2
    for name in ("similarity_f1", "rouge1", "rouge2", "rougeL", "distinct_1", "distinct_2", "minilm_embedding_f1"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert 0.0 <= metrics["bleu"] <= 100.0
    [sample] = json.loads(open(paths["samples.json"]).read())
    assert sample["gold"] and set(sample) == {"example_id", "gold", "generated", "consistent", "missing"}

    snippets = write_snippets(tmp_path / "snippets.parquet")
    apply_pess(paths["model.pt"], {}, [str(PESS_FIXTURES / "esconv_tiny.txt")], str(snippets), {}, True, 2, 0.7, 1, 4,
               paths["esconv.parquet"], paths["chars.parquet"], paths["apply.json"])
    seekers = read_table(paths["esconv.parquet"], ESCONV_PERSONAS).to_pylist()
    assert [(r["conversation_id"], r["seeker_turns"]) for r in seekers] == [("esconv-esconv_tiny-0000", 3), ("esconv-esconv_tiny-0001", 2)]
    assert all(1 <= r["windows"] <= 2 for r in seekers)
    characters = read_table(paths["chars.parquet"], CHARACTER_PERSONAS).to_pylist()
    assert [(c["char_id"], c["lines"]) for c in characters] == [("/m/1|hero", 3)]
    assert json.loads(open(paths["apply.json"]).read())["esconv_seekers"] == 2


def test_empty_evaluation_split_is_a_one_line_error(tmp_path):
    with pytest.raises(PipelineInputError, match=r"the 'val' split of pess.files is empty \(see pess.split\)$"):
        evaluate_pess(str(tmp_path / "model.pt"), {}, {**CORPUS, "val": 0.0}, {}, "val", 0, 0.7, 1, 4, 1,
                      str(tmp_path / "eval.json"), str(tmp_path / "samples.json"))


def test_apply_without_snippets_is_a_one_line_error(tmp_path):
    extractor_path = tmp_path / "missing.pt"
    with pytest.raises(PipelineInputError, match=r"missing\.pt: checkpoint not found$"):
        apply_pess(str(extractor_path), {}, [], str(tmp_path / "snippets.parquet"), {}, True, 2, 0.7, 1, 4,
                   str(tmp_path / "e.parquet"), str(tmp_path / "c.parquet"), str(tmp_path / "m.json"))


def test_windows_of_long_histories_cover_it_evenly(scorer):
    extractor = tiny_extractor(max_source_len=16).eval()
    turns = [("seeker", f"I have {n} dogs and {n} cats at home.") for n in range(12)]
    [(windows, persona)] = infer_personas(extractor, scorer, [turns], True, 3, 0.7, 8)
    assert windows == 3
    assert len(persona) == len(set(persona))
