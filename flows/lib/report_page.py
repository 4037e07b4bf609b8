"""The report page: one static HTML file (stage `report`, `personas report`) that opens
offline: no CDN, every chart is inline SVG laid out here and drawn by flows/templates/
report.html.j2, and a few lines of inline JS add search and highlighting.

Contents: Table 2-style scores beside the paper's (metrics/table2.json when the sweep ran, else
the trained variant from metrics/train.json, plus metrics/baselines.json), the per-trope report
and confusion matrix (stage evaluate), purity beside Table 3 (stage cluster), a 2-D projection
(t-SNE or PCA) of every character embedding coloured by gold trope with names on hover, the
movie clusters and trope co-occurrence (stage narrative), and a section per character: the
model's top tropes, nearest characters, the attention over its snippets with word heatmaps of
the top ones (Fig 4), and PESS persona sentences when data/character_personas.parquet exists."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flows.lib.character_embeddings import read_embeddings
from flows.lib.narrative_file import person_tropes
from flows.lib.config import out_path, read_json
from flows.lib.csv_files import read_csv
from flows.lib.errors import PipelineInputError
from flows.lib.paper import PAPER_TABLE2, PAPER_TABLE3
from flows.lib.schemas import CHARACTER_PERSONAS, atomic_path, read_table

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"  # flows/templates
PROJECTIONS = ("tsne", "pca")
METRICS = ("accuracy", "precision", "recall", "f1")
STREAM_NAMES = {"D": "own lines", "E": "context", "O": "others' lines"}
BASELINES = {"majority": "majority trope", "tfidf_logreg": "TF-IDF + logistic regression",
             "minilm_logreg": "mean MiniLM + logistic regression"}
PURITY_METHODS = {"amn": "AMN (ours)", "tfidf": "TF-IDF", "minilm": "mean MiniLM", "random": "random"}


@dataclass
class ReportInputs:
    """Every file the report reads; all after `embeddings` are optional."""

    evaluate: str
    confusion: str
    per_trope: str
    purity: str
    narrative: str
    embeddings: str
    train: str
    table2: str
    baselines: str
    personas: str
    unseen: str
    pess_test: str
    gen_eval: str
    screenplay_cv: str
    strategy_planner: str
    gen_planned: str

    def required(self) -> list[str]:
        return [self.evaluate, self.confusion, self.per_trope, self.purity, self.narrative, self.embeddings]


def report_inputs(params: dict[str, Any]) -> ReportInputs:
    """The files of params `paths` that the report reads."""
    keys = {"evaluate": "evaluate_metrics", "confusion": "confusion", "per_trope": "per_trope",
            "purity": "purity_metrics", "narrative": "narrative", "embeddings": "character_embeddings",
            "train": "train_metrics", "table2": "table2_metrics", "baselines": "baselines_metrics",
            "personas": "character_personas", "unseen": "unseen_tropes_metrics", "pess_test": "pess_test_metrics",
            "gen_eval": "gen_eval_metrics", "screenplay_cv": "screenplay_cv_metrics",
            "strategy_planner": "strategy_planner_metrics", "gen_planned": "gen_planned_metrics"}
    return ReportInputs(**{field: str(out_path(params, key)) for field, key in keys.items()})


# --- tables ---------------------------------------------------------------------------------
def table2_rows(table2: dict | None, train: dict | None, evaluate: dict, baselines: dict | None) -> list[dict]:
    """Rows of (model, our test scores, std over seeds or None, the paper's row or None)."""
    rows = []
    if table2:
        for variant, row in table2.items():
            rows.append({"model": variant, "kind": "AMN", "seeds": len(row["seeds"]),
                         "ours": {m: row[m]["mean"] for m in (*METRICS, "f1_macro")},
                         "std": {m: row[m]["std"] for m in (*METRICS, "f1_macro")},
                         "paper": _paper_row(variant)})
    else:
        source = train or evaluate
        rows.append({"model": source["variant"], "kind": "AMN", "seeds": 1, "ours": source["test"], "std": None,
                     "paper": _paper_row(source["variant"])})
    for name, label in BASELINES.items():
        if baselines and name in baselines:
            rows.append({"model": label, "kind": "baseline", "seeds": 1, "ours": baselines[name], "std": None,
                         "paper": None})
    return rows


UNSEEN_SYSTEMS = {  # metrics/unseen_tropes.json key -> label, in the order the table shows them
    "amn": "AMN on frozen MiniLM snippets", "minilm_lr_zero_shot": "mean MiniLM + LR, mixed with zero-shot",
    "minilm_lr": "mean MiniLM + LR", "zero_shot_descriptions": "zero-shot: similarity to trope descriptions",
    "tfidf_lr": "TF-IDF + LR", "majority": "majority", "chatgpt": "ChatGPT (stored answers)",
    "flan_ul2": "flan-ul2 (stored answers)", "flan_t5_xxl": "flan-t5-xxl (stored answers)",
}


def unseen_rows(unseen: dict | None) -> list[dict]:
    """The headline table: each system on the unseen test characters, with its intervals."""
    if not unseen:
        return []
    return [{"label": label, **unseen[key]} for key, label in UNSEEN_SYSTEMS.items() if key in unseen]


def _paper_row(variant: str) -> dict[str, float] | None:
    row = PAPER_TABLE2.get(variant)
    return dict(zip(METRICS, row)) if row else None


def purity_rows(purity: dict) -> list[dict]:
    """Per requested k: ours (both definitions) and the paper's three rows."""
    rows = []
    for k, used in sorted(purity["k_used"].items(), key=lambda item: int(item[0])):  # JSON keys sort as text
        rows.append({
            "k": k, "used": used,
            "standard": {method: purity["purity"][method][k] for method in PURITY_METHODS},
            "eq19": {method: purity["purity_eq19"][method][k] for method in PURITY_METHODS},
            "paper": {name: values.get(k) for name, values in purity["paper"].items()},
        })
    return rows


# --- charts ---------------------------------------------------------------------------------
def trope_colours(tropes: list[str]) -> dict[str, str]:
    """Distinct hues by the golden angle, in a fixed trope order."""
    return {trope: f"hsl({(i * 137.508) % 360:.0f}, {62 + 18 * (i % 2)}%, {42 + 10 * (i % 3)}%)"
            for i, trope in enumerate(tropes)}


def confusion_view(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Cells of the actual x predicted matrix over the tropes that occur, shaded by row share."""
    labels = sorted({row["actual"] for row in rows} | {row["predicted"] for row in rows})
    index = {trope: i for i, trope in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for row in rows:
        counts[index[row["actual"]], index[row["predicted"]]] += 1
    cell, margin = (14 if len(labels) <= 30 else 8), 150
    totals = counts.sum(1, keepdims=True).clip(min=1)
    cells = [{"x": margin + j * cell, "y": margin + i * cell, "count": int(counts[i, j]),
              "shade": round(float(counts[i, j] / totals[i, 0]), 3), "diagonal": i == j,
              "title": f"{labels[i]} predicted as {labels[j]}: {counts[i, j]}"}
             for i, j in zip(*np.nonzero(counts))]
    return {"labels": [{"name": name, "at": margin + (i + 0.5) * cell} for i, name in enumerate(labels)],
            "cells": cells, "cell": cell, "margin": margin, "size": margin + cell * len(labels) + 10,
            "correct": int(np.trace(counts)), "total": int(counts.sum())}


PERSONA_SPLITS = {
    "unseen_persona": ("on personas never seen in training (headline)",
                       "Speakers whose persona sentences, and every paraphrase of them, are absent from training."),
    "seen_pool": ("on the random conversation split",
                  "The personas recur in training: this split rewards recalling the persona pool."),
}


# the systems of metrics/pess_test.json and metrics/gen_eval.json in table order: the references
# first, then the models; a system not named here comes after them
SYSTEM_ORDER = ("majority", "prior", "pool_prior", "retrieval", "extractive", "classifier",
                "none", "select", "base", "full", "oracle")


def in_system_order(systems: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (system, value) pairs in SYSTEM_ORDER, unknown systems last in their given order."""
    return sorted(systems.items(), key=lambda item: SYSTEM_ORDER.index(item[0]) if item[0] in SYSTEM_ORDER
                  else len(SYSTEM_ORDER))


def persona_tables(pess_test: dict | None) -> list[dict[str, Any]]:
    """One table per split of metrics/pess_test.json, headline first."""
    if not pess_test:
        return []
    return [{"title": title, "note": note,
             "rows": [{"system": system, **scores} for system, scores in in_system_order(pess_test[split])]}
            for split, (title, note) in PERSONA_SPLITS.items() if split in pess_test]


def _cell(scores: dict[str, Any], key: str, digits: int = 1) -> dict[str, str]:
    value = scores.get(key)
    if value is None:
        return {"value": "–", "interval": ""}
    low_high = scores.get(f"{key}_ci95")
    return {"value": f"{value:.{digits}f}", "interval": f"[{low_high[0]:.{digits}f}, {low_high[1]:.{digits}f}]" if low_high else ""}


def _support_row(system: str, scores: dict[str, Any]) -> dict[str, Any]:
    pal = scores.get("pal", {})
    return {"system": system, "cells": [_cell(scores, "strategy_acc"), _cell(pal, "rouge_l"), _cell(pal, "bleu_2"),
                                        _cell(pal, "dist_2"), _cell(scores, "ppl", 2), _cell(scores, "persona_nll_gain", 4)]}


def _gold_names(table: dict[str, Any]) -> list[str]:
    predictions = table["predictions"]
    return [predictions["strategies"][g] for g in predictions["gold"]]


def support_view(gen_eval: dict | None, planner: dict | None = None, planned: dict | None = None) -> dict[str, Any] | None:
    """The table of metrics/gen_eval.json's systems and one strategy confusion matrix per system
    with per-example predictions. The named stages join when they were run on the same turns:
    the fine-tuned strategy planner (metrics/strategy_planner.json) with a row and a matrix, and
    a generator decoding with its strategies (metrics/gen_planned.json) with a row."""
    if not gen_eval:
        return None
    rows = [_support_row(system, scores) for system, scores in in_system_order(gen_eval["systems"])]
    predictions = gen_eval["predictions"]
    names = predictions["strategies"]
    confusions = [{"system": system, "view": confusion_view([{"actual": names[g], "predicted": names[p]}
                                                              for g, p in zip(predictions["gold"], predicted)])}
                  for system, predicted in in_system_order(predictions["systems"])]
    if planner and [p["gold"] for p in planner["predictions"]] == _gold_names(gen_eval):
        test = planner["test"]
        accuracy = {"strategy_acc": test["planner_strategy_acc"], "strategy_acc_ci95": test["planner_strategy_acc_ci95"]}
        rows.append({"system": "planner", "cells": [_cell(accuracy, "strategy_acc"), *[_cell({}, "") for _ in range(5)]]})
        confusions.append({"system": "planner", "view": confusion_view([{"actual": p["gold"], "predicted": p["planner"]}
                                                                        for p in planner["predictions"]])})
    if planned and _gold_names(planned) == _gold_names(gen_eval):
        rows.append(_support_row(f"{planned['generator']} + planner", planned["systems"]["planned"]))
    return {"examples": gen_eval["examples"], "decoded": gen_eval["decoded"], "note": gen_eval["differences_from_pal"],
            "rows": rows, "confusions": confusions}


def project(z: np.ndarray, method: str, seed: int) -> np.ndarray:
    """[n, 2] map of the unit z vectors: t-SNE (perplexity fitted to n), or PCA."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import normalize

    unit = normalize(z)
    if len(unit) < 3:
        return np.column_stack([np.arange(len(unit), dtype=float), np.zeros(len(unit))])
    if method == "tsne" and len(unit) > 5:
        return TSNE(n_components=2, perplexity=min(30.0, (len(unit) - 1) / 3), init="pca",
                    random_state=seed).fit_transform(unit)
    return PCA(n_components=2, random_state=seed).fit_transform(unit)


def scatter_view(points: np.ndarray, characters: list[dict], colours: dict[str, str]) -> dict[str, Any]:
    width, height, pad = 640, 480, 18
    low, high = points.min(0), points.max(0)
    span = np.where(high - low > 0, high - low, 1.0)
    scaled = pad + (points - low) / span * [width - 2 * pad, height - 2 * pad]
    dots = []
    for i, (character, (x, y)) in enumerate(zip(characters, scaled)):
        predicted = character["top_tropes"][0]["trope"]
        dots.append({"x": round(float(x), 1), "y": round(float(height - y), 1), "colour": colours[character["trope"]],
                     "trope": character["trope"], "href": f"#char-{i}", "missed": predicted != character["trope"],
                     "title": f"{character['character']} ({character['movie']}) — {character['trope']}; "
                              f"model: {predicted}"})
    counts = Counter(character["trope"] for character in characters)
    legend = [{"trope": trope, "colour": colours[trope], "count": counts[trope]} for trope in sorted(counts)]
    return {"width": width, "height": height, "dots": dots, "legend": legend}


def weight_strip(weights: list[float], top: list[int], first_lines: list[str]) -> dict[str, Any]:
    """Fig 4: one bar per snippet, in story order, height by attention weight."""
    height, bar = 46, max(3, min(14, 560 // max(1, len(weights))))
    peak = max(weights) if weights else 1.0
    bars = []
    for i, (weight, line) in enumerate(zip(weights, first_lines)):
        h = max(1.0, height * weight / peak) if peak > 0 else 1.0
        bars.append({"x": i * bar, "y": round(height - h, 1), "h": round(h, 1), "w": bar - 1, "top": i in top,
                     "title": f"snippet {i + 1}: weight {weight:.3f} — {line[:90]}"})
    return {"bars": bars, "width": max(bar * len(weights), 10), "height": height}


def heat_words(pairs: list[list]) -> list[dict[str, Any]]:
    """Word spans shaded by weight, min-max scaled within the stream (equal weights: no shade)."""
    weights = [weight for _, weight in pairs]
    low, high = min(weights, default=0.0), max(weights, default=0.0)
    return [{"token": token, "shade": round((weight - low) / (high - low), 2) if high > low else 0.0}
            for token, weight in pairs]


def character_views(narrative: dict, personas: dict[str, list[str]]) -> list[dict[str, Any]]:
    anchor = {c["char_id"]: f"char-{i}" for i, c in enumerate(narrative["characters"])}
    by_id = {c["char_id"]: c for c in narrative["characters"]}
    tropes_of = person_tropes(narrative["characters"])
    views = []
    for i, c in enumerate(narrative["characters"]):
        weights = [snippet["weight"] for snippet in c["snippets"]]
        top = [entry["index"] for entry in c["top_snippets"]]
        first_lines = [(snippet["D"] or [""])[0] for snippet in c["snippets"]]
        views.append({
            "anchor": anchor[c["char_id"]], "name": c["character"], "movie": c["movie"], "actor": c["actor"],
            "trope": c["trope"], "n_snippets": c["n_snippets"], "correct": c["top_tropes"][0]["trope"] == c["trope"],
            "top_tropes": [{**t, "gold": t["trope"] == c["trope"]} for t in c["top_tropes"]],
            "neighbours": [{"anchor": anchor[n["char_id"]], "name": by_id[n["char_id"]]["character"],
                            "movie": by_id[n["char_id"]]["movie"],
                            "trope": ", ".join(tropes_of[by_id[n["char_id"]]["person"]]),
                            "similarity": n["similarity"]} for n in c["neighbours"]],
            "strip": weight_strip(weights, top, first_lines),
            "snippets": [{
                "rank": rank + 1, "weight": c["snippets"][entry["index"]]["weight"],
                "scene": c["snippets"][entry["index"]]["scene"], "split": c["snippets"][entry["index"]]["split"],
                "others": c["snippets"][entry["index"]]["O"],
                "streams": [{"name": STREAM_NAMES[s], "words": heat_words(words)}
                            for s, words in entry["words"].items()],
            } for rank, entry in enumerate(c["top_snippets"])],
            "persona": personas.get(c["char_id"], []),
        })
    return views


def read_personas(path: str | Path) -> dict[str, list[str]]:
    if not Path(path).exists():
        return {}
    table = read_table(path, CHARACTER_PERSONAS)
    return dict(zip(table.column("char_id").to_pylist(), table.column("persona").to_pylist()))


# --- the page -------------------------------------------------------------------------------
def build_report(inputs: ReportInputs, projection: str = "tsne", seed: int = 0) -> str:
    """The HTML text of the report."""
    import jinja2

    evaluate = read_json(inputs.evaluate)
    train = read_json(inputs.train, required=False)
    narrative = read_json(inputs.narrative)
    purity = read_json(inputs.purity)
    char_ids, _, z, _ = read_embeddings(inputs.embeddings)
    if char_ids != [c["char_id"] for c in narrative["characters"]]:
        raise PipelineInputError(f"{inputs.narrative}: characters differ from {inputs.embeddings}; rerun narrative")
    colours = trope_colours(narrative["tropes"])
    characters = narrative["characters"]
    per_trope = sorted(read_csv(inputs.per_trope), key=lambda row: (-int(row["support"]), row["trope"]))
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    unseen = read_json(inputs.unseen, required=False)
    screenplay_cv = read_json(inputs.screenplay_cv, required=False)
    return environment.get_template("report.html.j2").render(
        unseen=unseen,
        unseen_rows=unseen_rows(unseen),
        screenplay_cv=screenplay_cv,
        screenplay_cv_rows=unseen_rows(screenplay_cv),
        variant=narrative["variant"],
        n_diag=narrative["n_diag"],
        gamma=narrative["gamma"],
        evaluate=evaluate,
        train=train,
        table2=table2_rows(read_json(inputs.table2, required=False), train, evaluate,
                           read_json(inputs.baselines, required=False)),
        swept=Path(inputs.table2).exists(),
        metrics=METRICS,
        per_trope=[{**row, "f1": float(row["f1"]), "precision": float(row["precision"]),
                    "recall": float(row["recall"])} for row in per_trope],
        confusion=confusion_view(read_csv(inputs.confusion)),
        purity=purity,
        purity_rows=purity_rows(purity),
        purity_methods=PURITY_METHODS,
        paper_purity=list(PAPER_TABLE3),  # PR, DP, AMN as in the paper (JSON keys come sorted)
        scatter=scatter_view(project(z, projection, seed), characters, colours),
        projection=projection,
        colours=colours,
        movie_clusters=narrative["movie_clusters"],
        cooccurrence=narrative["trope_cooccurrence"][:25],
        characters=character_views(narrative, read_personas(inputs.personas)),
        has_personas=Path(inputs.personas).exists(),
        persona_tables=persona_tables(read_json(inputs.pess_test, required=False)),
        support=support_view(read_json(inputs.gen_eval, required=False), read_json(inputs.strategy_planner, required=False),
                             read_json(inputs.gen_planned, required=False)),
    )


def write_report(html: str, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
