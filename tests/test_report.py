import json
import shutil
from dataclasses import asdict

import lxml.html
import numpy as np
import pyarrow as pa
import pytest
from eval_tiny import KS, VARIANT, tiny_project

from flows.lib.errors import PipelineInputError
from flows.lib.config import load_params
from flows.lib.csv_files import read_csv
from flows.lib.paper import PAPER_TABLE2
from flows.lib.report_page import (ReportInputs, build_report, confusion_view, heat_words, persona_tables, project,
                                   report_inputs, support_view, table2_rows)
from flows.lib.schemas import CHARACTER_PERSONAS, write_table
from flows.table2 import summarise
from flows.lib.metrics import classification_metrics
from flows.lib.trope_data import load_trope_data


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    return tiny_project(tmp_path_factory)


def inputs_in(folder) -> ReportInputs:
    return ReportInputs(**{name: str(folder / path) for name, path in asdict(report_inputs(load_params())).items()})


def test_confusion_cells_count_pairs_and_shade_by_row():
    rows = [{"actual": a, "predicted": p} for a, p in
            [("hero", "hero"), ("hero", "villain"), ("hero", "hero"), ("villain", "villain"), ("mentor", "hero")]]
    view = confusion_view(rows)
    assert [label["name"] for label in view["labels"]] == ["hero", "mentor", "villain"]
    cells = {cell["title"]: cell for cell in view["cells"]}
    hits = cells["hero predicted as hero: 2"]
    assert hits["shade"] == pytest.approx(2 / 3, abs=1e-3) and hits["diagonal"]
    assert cells["mentor predicted as hero: 1"]["shade"] == 1.0 and not cells["mentor predicted as hero: 1"]["diagonal"]
    assert len(cells) == 4 and (view["correct"], view["total"]) == (3, 5)


def test_systems_tables_put_the_references_before_the_models():
    from flows.lib.generator_eval import evaluation_table

    scores = {"similarity_f1": 0.26, "similarity_f1_ci95": [0.2, 0.3], "n": 237}
    pess_systems = ["select", "base", "full", "zeta", "extractive", "pool_prior", "retrieval"]
    [table] = persona_tables(json.loads(json.dumps({"unseen_persona": {name: scores for name in pess_systems}}, sort_keys=True)))
    assert [row["system"] for row in table["rows"]] == ["pool_prior", "retrieval", "extractive", "select", "base", "full", "zeta"]

    keys = [("c", n) for n in range(4)]
    gold = ["[Question]", "[Question]", "[Others]", "[Self-disclosure]"]
    guesses = {name: [{"gold_strategy": g, "strategy": "[Question]"} for g in gold]
               for name in ("retrieval", "classifier", "prior", "majority")}
    variants = {name: {"outputs": [{"conversation_id": c, "turn_index": n, "gold_strategy": g, "strategy": g}
                                   for (c, n), g in zip(keys, gold)]} for name in ("oracle", "select", "none")}
    metrics = json.loads(json.dumps(evaluation_table(variants, guesses, keys, 0, 50, 0), sort_keys=True))  # as written
    view = support_view(metrics)
    order = ["majority", "prior", "retrieval", "classifier", "none", "select", "oracle"]
    assert [row["system"] for row in view["rows"]] == order
    assert [matrix["system"] for matrix in view["confusions"]] == order

    planner = {"test": {"planner_strategy_acc": 75.0, "planner_strategy_acc_ci95": [25.0, 100.0]},
               "predictions": [{"gold": g, "planner": "[Question]"} for g in gold]}
    joined = support_view(metrics, planner)
    assert [row["system"] for row in joined["rows"]] == [*order, "planner"]
    assert joined["rows"][-1]["cells"][0] == {"value": "75.0", "interval": "[25.0, 100.0]"}
    assert joined["confusions"][-1]["view"]["correct"] == 2
    other_turns = {**planner, "predictions": planner["predictions"][::-1]}
    assert [row["system"] for row in support_view(metrics, other_turns)["rows"]] == order  # not the same turns: left out
    planned = {**json.loads(json.dumps(evaluation_table({"planned": variants["select"]}, guesses, keys, 0, 50, 0), sort_keys=True)),
               "generator": "select"}
    assert support_view(metrics, planner, planned)["rows"][-1] == {
        "system": "select + planner", "cells": joined["rows"][order.index("select")]["cells"]}  # same outputs, same cells
    planned["predictions"]["gold"] = planned["predictions"]["gold"][::-1]
    assert len(support_view(metrics, planner, planned)["rows"]) == len(order) + 1  # not the same turns: left out


def test_word_heat_is_min_max_scaled_and_flat_weights_stay_unshaded():
    assert [w["shade"] for w in heat_words([["a", 0.1], ["b", 0.5], ["c", 0.3]])] == [0.0, 1.0, 0.5]
    assert [w["shade"] for w in heat_words([["a", 0.5], ["b", 0.5]])] == [0.0, 0.0]


@pytest.mark.slow
def test_projection_is_deterministic_under_a_seed():
    z = np.random.default_rng(0).normal(size=(20, 8))
    for method in ("tsne", "pca"):
        first = project(z, method, seed=0)
        assert first.shape == (20, 2) and np.array_equal(first, project(z, method, seed=0))


def test_table2_rows_put_the_paper_beside_a_single_run_or_the_sweep():
    test = {"accuracy": 0.5, "precision": 0.4, "recall": 0.5, "f1": 0.45, "f1_macro": 0.3}
    single = table2_rows(None, {"variant": "attn3", "test": test}, {"variant": "attn3", "test": test},
                         {"majority": test, "examples": {"train": 3}})
    assert [row["model"] for row in single] == ["attn3", "majority trope"]
    assert single[0]["paper"]["accuracy"] == PAPER_TABLE2["attn3"][0] and single[1]["paper"] is None
    swept = table2_rows(summarise([{"variant": v, "seed": s, "test": test} for v in ("attn3", "mine") for s in (0, 1)]),
                        None, {"variant": "attn3", "test": test}, None)
    assert [(row["model"], row["seeds"], row["std"]["f1"]) for row in swept] == [("attn3", 2, 0.0), ("mine", 2, 0.0)]
    assert swept[1]["paper"] is None


@pytest.mark.slow
def test_report_from_a_tiny_trained_model(project_dir):
    page = (project_dir / "reports" / "report.html").read_text()
    narrative = json.loads((project_dir / "data" / "narrative.json").read_text())
    tree = lxml.html.fromstring(page)
    # one section per character, with its name, top tropes, neighbours and top snippets
    for i, character in enumerate(narrative["characters"]):
        section = tree.get_element_by_id(f"char-{i}")
        assert character["character"] in section.findtext("summary")
        assert len(section.xpath(".//h3[text()='Predicted tropes']/following-sibling::table[1]//tr")) == 4
        assert len(section.xpath(".//ol/li")) == len(character["neighbours"])
        assert len(section.xpath(".//div[@class='snippet']")) == 3
        assert len(section.xpath(".//svg/rect")) == character["n_snippets"]  # Fig 4: a bar per snippet
    # Table 2 row of the trained variant beside the paper's row
    row = tree.xpath("//section[@id='classification']/table/tr[td]")[0]
    cells = [td.text_content().strip() for td in row.xpath("td")]
    evaluate = json.loads((project_dir / "metrics" / "evaluate.json").read_text())
    assert cells[0] == VARIANT and cells[1] == f"{evaluate['test']['accuracy']:.3f}"
    assert cells[6:] == [f"{value:.3f}" for value in PAPER_TABLE2[VARIANT]]
    # purity tables: one row per k, ours beside the paper's columns
    purity = json.loads((project_dir / "metrics" / "purity.json").read_text())
    eq19 = tree.xpath("//section[@id='purity']/table[2]/tr[td]")
    assert [r.xpath("td")[0].text_content().strip() for r in eq19] == [str(k) for k in KS]
    assert eq19[0].xpath("td")[1].text_content() == f"{purity['purity_eq19']['amn'][str(KS[0])]:.1f}"
    # the map: a dot per character, named on hover, linked to its section
    dots = tree.xpath("//svg[@id='scatter']//circle")
    assert len(dots) == len(narrative["characters"])
    assert {dot.findtext("title").split(" (")[0] for dot in dots} == {c["character"] for c in narrative["characters"]}
    assert {dot.getparent().get("href") for dot in dots} == {f"#char-{i}" for i in range(len(dots))}
    cells = confusion_view(read_csv(project_dir / "plots" / "confusion.csv"))["cells"]
    assert len(tree.xpath("//section[@id='confusion']//rect/title")) == len(cells)
    # it opens offline: nothing is fetched
    assert not tree.xpath("//*[@src] | //link | //iframe | //object")
    assert all(a.get("href").startswith("#") for a in tree.xpath("//a[@href]"))


@pytest.mark.slow
def test_report_shows_the_sweep_baselines_and_pess_personas_when_present(project_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(project_dir, folder, ignore=shutil.ignore_patterns(".prefect-results"))
    trained = json.loads((folder / "metrics" / "train.json").read_text())
    (folder / "metrics" / "table2.json").write_text(json.dumps(summarise([trained, {**trained, "seed": 1}])))
    data = load_trope_data(folder / "data" / "snippets_screenplays.parquet", folder / "data" / "characters.parquet",
                           folder / "data" / "tropes.parquet")
    test_labels = [label for label, _ in data.examples("test")]
    majority = int(np.bincount([label for label, _ in data.examples("train")]).argmax())
    baselines = {"majority": classification_metrics(test_labels, [majority] * len(test_labels))}
    (folder / "metrics" / "baselines.json").write_text(json.dumps(baselines))
    narrative = json.loads((folder / "data" / "narrative.json").read_text())
    first = narrative["characters"][0]
    personas = [{"char_id": first["char_id"], "movie": first["movie"], "lines": 9, "windows": 1,
                 "persona": ["I lift every morning.", "I like the gym."]}]
    write_table(pa.Table.from_pylist(personas), folder / "data" / "character_personas.parquet", CHARACTER_PERSONAS)

    tree = lxml.html.fromstring(build_report(inputs_in(folder), projection="pca"))
    rows = tree.xpath("//section[@id='classification']/table/tr[td]")
    assert [r.xpath("td")[0].text_content().strip() for r in rows] == [VARIANT, "majority trope (baseline)"]
    assert "±0.000" in rows[0].xpath("td")[1].text_content()  # two identical seeds
    assert rows[1].xpath("td")[1].text_content().strip() == f"{baselines['majority']['accuracy']:.3f}"
    assert tree.get_element_by_id("char-0").xpath(".//ul[@class='persona']/li/text()") == personas[0]["persona"]
    assert not tree.get_element_by_id("char-1").xpath(".//ul[@class='persona']")


@pytest.mark.slow
def test_the_unseen_character_table_heads_the_report_when_present(project_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(project_dir, folder, ignore=shutil.ignore_patterns(".prefect-results"))
    assert lxml.html.fromstring(build_report(inputs_in(folder), projection="pca")).xpath("//section[@id='unseen']") == []
    row = {"accuracy": 0.25, "accuracy_ci95": [0.2, 0.3], "top5_accuracy": 0.5, "top5_accuracy_ci95": [0.4, 0.6],
           "macro_f1": 0.1, "macro_f1_ci95": [0.05, 0.15], "n": 114}
    unseen = {"amn": row, "majority": {**row, "accuracy": 0.035}, "gpt4_paper": {"macro_f1": 0.449},
              "protocol": {"characters": {"headline": {"test": 114, "refit": 289}}}}
    (folder / "metrics" / "unseen_tropes.json").write_text(json.dumps(unseen))
    tree = lxml.html.fromstring(build_report(inputs_in(folder), projection="pca"))
    sections = tree.xpath("//section/@id")
    assert sections.index("unseen") < sections.index("classification")
    cells = [[td.text_content().strip() for td in tr.xpath("td")] for tr in tree.xpath("//section[@id='unseen']/table/tr[td]")]
    assert cells == [["AMN on frozen MiniLM snippets", "0.250 [0.200, 0.300]", "0.500 [0.400, 0.600]", "0.100 [0.050, 0.150]", "114"],
                     ["majority", "0.035 [0.200, 0.300]", "0.500 [0.400, 0.600]", "0.100 [0.050, 0.150]", "114"]]
    assert "partly rewards recognising the character" in tree.get_element_by_id("classification").text_content()
    assert tree.xpath("//section[@id='screenplay-cv']") == []

    screenplay_cv = {"amn": {**row, "n": 173}, "zero_shot_descriptions": {**row, "accuracy": 0.197, "n": 173},
                     "protocol": {"folds": 5, "characters": 173}}
    (folder / "metrics" / "screenplay_cv.json").write_text(json.dumps(screenplay_cv))
    tree = lxml.html.fromstring(build_report(inputs_in(folder), projection="pca"))
    sections = tree.xpath("//section/@id")
    assert sections.index("unseen") < sections.index("screenplay-cv") < sections.index("classification")
    section = tree.get_element_by_id("screenplay-cv")
    assert "5-fold by movie" in section.text_content() and "173 people" in section.text_content()
    assert [[td.text_content().strip() for td in tr.xpath("td")][:2] for tr in section.xpath("table/tr[td]")] == [
        ["AMN on frozen MiniLM snippets", "0.250 [0.200, 0.300]"],
        ["zero-shot: similarity to trope descriptions", "0.197 [0.200, 0.300]"]]


@pytest.mark.slow
def test_a_missing_stage_output_is_a_one_line_error(project_dir, tmp_path):
    inputs = inputs_in(project_dir)
    inputs.narrative = str(tmp_path / "narrative.json")
    with pytest.raises(PipelineInputError, match=r"narrative\.json: file not found; run the stage that writes it"):
        build_report(inputs)
    (tmp_path / "narrative.json").write_text('{"characters": [')
    with pytest.raises(PipelineInputError, match=r"narrative\.json: not valid JSON"):
        build_report(inputs)


@pytest.mark.slow
def test_persona_and_support_tables_with_strategy_confusions(project_dir, tmp_path):
    from flows.lib.generator_eval import evaluation_table

    folder = tmp_path / "copy"
    shutil.copytree(project_dir, folder, ignore=shutil.ignore_patterns(".prefect-results"))
    scores = {"similarity_f1": 0.26, "similarity_f1_ci95": [0.2, 0.3], "rouge_match_f1": 0.1, "rouge_match_f1_ci95": [0.05, 0.15],
              "exact_f1": 0.05, "exact_f1_ci95": [0.0, 0.1], "grounding_rate": 1.0, "grounding_rate_ci95": [1.0, 1.0],
              "sentences_mean": 1.8, "n": 237}
    pess_test = {"protocol": {"second_encoder": "rouge_match_f1"}, "val": {"select": scores},
                 "seen_pool": {"retrieval": scores}, "unseen_persona": {"select": scores, "retrieval": scores}}
    (folder / "metrics" / "pess_test.json").write_text(json.dumps(pess_test))
    keys = [("c", n) for n in range(4)]
    gold = ["[Question]", "[Question]", "[Others]", "[Self-disclosure]"]
    references = {"majority": [{"gold_strategy": g, "strategy": "[Question]"} for g in gold],
                  "retrieval": [{"gold_strategy": g, "strategy": g, "response": "i am sorry to hear that", "gold": "so sorry"}
                                for g in gold]}
    (folder / "metrics" / "gen_eval.json").write_text(json.dumps(evaluation_table({}, references, keys, len(keys), 50, 0)))

    tree = lxml.html.fromstring(build_report(inputs_in(folder), projection="pca"))
    support = tree.get_element_by_id("support")
    titles = [h.text_content() for h in support.xpath("h3")]
    assert titles[0].startswith("Persona extraction, on personas never seen") and titles[1].endswith("random conversation split")
    first_table = [[td.text_content().strip() for td in tr.xpath("td")] for tr in support.xpath("table[1]/tr[td]")]
    assert [row[0] for row in first_table] == ["retrieval", "select"]  # the reference before the model
    assert first_table[1][:2] == ["select", "0.260 [0.200, 0.300]"] and first_table[1][-1] == "237"
    systems = [tr.xpath("td")[0].text_content() for tr in support.xpath("table[3]/tr[td]")]
    assert systems == ["majority", "retrieval"]
    accuracy = support.xpath("table[3]/tr[td]")[0].xpath("td")[1].text_content()
    assert accuracy.startswith("50.0")  # majority: 2 of the 4 turns are questions
    matrices = support.xpath(".//h4/text()")
    assert matrices == ["majority: 2 of 4 right", "retrieval: 4 of 4 right"]
