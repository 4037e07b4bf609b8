"""Is the split measuring name recognition? (issue 15) On the bundled screenplays with params.yaml's
ingest and split settings: the names-only reference (flows/lib/name_probe.py: TF-IDF + LR over
only the name tokens of D, E and O, C tuned on val) and the majority rate on test, and the test
snippets that share a scene with a training snippet of their character, for names masked or not
(ingest.mask_names) and for the old per-snippet split or the scene-grouped one (split.unit
snippet). Then, under split.unit character, the test people who share a movie with a training
character, for the old per-person split (flows/lib/splits.py at --before, read from git) and the
split by movie.

    python benchmarks/bench_names_only.py [--before 3e6fe22]

Prints a markdown table."""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.lib.cmu_tropes import ingest_tropes  # noqa: E402
from flows.lib.config import data_path, load_params  # noqa: E402
from flows.lib.name_probe import name_documents, names_only_accuracy, probe_masker, shared_scene_snippets  # noqa: E402
from flows.lib.schemas import CHARACTERS, CLUSTERS, SNIPPETS, read_clusters, read_table  # noqa: E402
from flows.lib.screenplay import cue_counts, parse_screenplay  # noqa: E402
from flows.lib.screenplay_snippets import SCRIPT_MAP, SCRIPTS_ROOT, bundled_scripts, ingest_screenplays, ingest_settings  # noqa: E402
from flows.lib.splits import character_splits, split_settings, unit_splits  # noqa: E402


def per_snippet_split(snippets: list[dict], person_of: dict[str, str], split) -> list[str]:
    """The split before scene grouping: each character's snippets shuffled one by one."""
    rows_of: dict[str, list[int]] = {}
    for index, snippet in enumerate(snippets):
        rows_of.setdefault(snippet["char_id"], []).append(index)
    labels = [""] * len(snippets)
    for char_id, indices in rows_of.items():
        key = f"{person_of[char_id]}|{snippets[indices[0]]['movie']}"
        for index, label in zip(indices, unit_splits(len(indices), split, key)):
            labels[index] = label
    return labels


def old_splits_module(revision: str):
    source = subprocess.run(["git", "show", f"{revision}:flows/lib/splits.py"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "splits_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("splits_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def movie_sharing(split_of: dict[str, str], rows, people: set[str]) -> tuple[int, int]:
    """(test people sharing a movie with a training person, test people), among `people`."""
    movie_of = {row.freebase_id: row.movie for row in rows if row.freebase_id in people}
    train_movies = {movie for person, movie in movie_of.items() if split_of[person] == "train"}
    test = [person for person in movie_of if split_of[person] == "test"]
    return sum(movie_of[person] in train_movies for person in test), len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="3e6fe22", help="git revision of the split before this protocol")
    args = parser.parse_args()
    params = load_params()
    split = dataclasses.replace(split_settings(params), unit="snippet")
    settings = ingest_settings(params)
    scripts_root = data_path(params, SCRIPTS_ROOT)
    clusters = data_path(params, *CLUSTERS)
    work = Path(tempfile.mkdtemp())
    ingest_tropes(clusters, work / "characters.parquet", split)
    characters = read_table(work / "characters.parquet", CHARACTERS).to_pylist()
    trope_of = {c["char_id"]: c["trope"] for c in characters}
    person_of = {c["char_id"]: c["freebase_id"] for c in characters}

    snippets = {}
    for masked in (False, True):
        started = time.perf_counter()
        ingest_screenplays(work / "characters.parquet", scripts_root, None, work / f"s{masked}.parquet",
                           work / "m.json", dataclasses.replace(settings, mask_names=masked), split)
        snippets[masked] = read_table(work / f"s{masked}.parquet", SNIPPETS).to_pylist()
        print(f"ingest mask_names={masked}: {len(snippets[masked])} snippets, {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
    started = time.perf_counter()
    scripts = {script.name: script for script in bundled_scripts(scripts_root / SCRIPT_MAP, scripts_root).values()}
    probe = probe_masker([row.character for row in read_clusters(clusters)],
                         [cue_counts(parse_screenplay(script.text, script.layout)) for script in scripts.values()],
                         settings.min_lines)
    print(f"probe masker: {time.perf_counter() - started:.1f} s", file=sys.stderr)

    print("| names | split | names-only acc. (test) [95% CI] | C (val) | majority [95% CI] | test snippets with a name token "
          "| test snippets sharing a scene with own training snippet | n test |")
    print("|---|---|---|---|---|---|---|---|")
    for masked in (False, True):
        rows = snippets[masked]
        documents = name_documents(rows, probe)
        labels = [trope_of[row["char_id"]] for row in rows]
        for name, splits in (("per snippet (before)", per_snippet_split(rows, person_of, split)),
                             ("scene-grouped (new)", [row["split"] for row in rows])):
            started = time.perf_counter()
            result = names_only_accuracy(documents, labels, splits)
            print(f"names-only fits: {time.perf_counter() - started:.1f} s", file=sys.stderr)
            shared = shared_scene_snippets([{**row, "split": label} for row, label in zip(rows, splits)])
            (low, high), (majority_low, majority_high) = result["accuracy_ci95"], result["majority_ci95"]
            print(f"| {'masked' if masked else 'raw'} | {name} | {result['accuracy']:.3f} [{low:.3f}, {high:.3f}] | "
                  f"{result['C']:g} | {result['majority']:.3f} [{majority_low:.3f}, {majority_high:.3f}] | "
                  f"{result['with_name_share']:.0%} | {shared} "
                  f"({shared / result['n_test']:.0%}) | {result['n_test']} |")

    rows = read_clusters(clusters)
    with_snippets = {person_of[row["char_id"]] for row in snippets[True]}
    everyone = {row.freebase_id for row in rows}
    unit = dataclasses.replace(split, unit="character")
    print("\n| character split | test people sharing a movie with a training person (with snippets) | (all CMU) |")
    print("|---|---|---|")
    for name, split_of in (("per person (before)", old_splits_module(args.before).character_splits(rows, unit)),
                           ("by movie (new)", character_splits(rows, unit))):
        shared, total = movie_sharing(split_of, rows, with_snippets)
        shared_all, total_all = movie_sharing(split_of, rows, everyone)
        print(f"| {name} | {shared} of {total} | {shared_all} of {total_all} |")


if __name__ == "__main__":
    main()
