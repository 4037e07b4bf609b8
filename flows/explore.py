"""`personas neighbours "<character>"`, `personas explain "<character>"` and `personas classify
<screenplay.txt> --character NAME`: a character's nearest characters and its snippets sorted by
attention (both read data/narrative.json from stage narrative), and the trained AMN run on a
screenplay, snippets cut exactly as ingest_screenplays cuts them (ingest.window, ingest.max_snippets)
and all of them read as one example, as stage cluster reads every character (on params
`inference.device`).

An unknown name is a one-line error listing the closest names (difflib)."""
from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

import numpy as np

from flows.lib.amn_inference import load_model, model_path, run_model
from flows.lib.config import load_params, out_path, param
from flows.lib.errors import PipelineInputError
from flows.lib.narrative_file import person_tropes, read_narrative
from flows.lib.screenplay import LAYOUTS, cue_counts, match_character, normalize_cue, parse_screenplay
from flows.lib.name_mask import NameMasker
from flows.lib.screenplay_snippets import cap_evenly, ingest_settings, mask_streams, snippet_windows, window_streams
from flows.lib.trope_data import unlabelled_snippets
from models.runtime import pick_device


# --- characters of the narrative ------------------------------------------------------------
def closest(name: str, choices: list[str], limit: int = 5) -> str:
    """'a, b, c': the choices nearest to `name`, case aside; '' when none is near."""
    folded = {choice.casefold(): choice for choice in choices}
    return ", ".join(folded[match] for match in difflib.get_close_matches(name.casefold(), list(folded), limit, 0.5))


def find_character(narrative: dict[str, Any], name: str, movie: str | None, source: str) -> list[dict[str, Any]]:
    """The entries of one character (several when the person holds several tropes)."""
    characters = narrative["characters"]
    found = [c for c in characters if c["character"].casefold() == name.strip().casefold()]
    if not found:
        near = closest(name, sorted({c["character"] for c in characters}))
        raise PipelineInputError(f"{source}: no character named {name!r}" + (f"; closest: {near}" if near else ""))
    if movie is not None:
        in_movie = [c for c in found if c["movie"].casefold() == movie.strip().casefold()]
        if not in_movie:
            raise PipelineInputError(f"{source}: {name!r} is not in movie {movie!r}; it is in: "
                                     + ", ".join(sorted({c['movie'] for c in found})))
        found = in_movie
    movies = sorted({c["movie"] for c in found})
    if len(movies) > 1:
        raise PipelineInputError(f"{source}: {name!r} is in {len(movies)} movies ({', '.join(movies)}); add --movie")
    return found


def describe(entries: list[dict[str, Any]]) -> str:
    first = entries[0]
    return f"{first['character']} ({first['movie']}) — trope {', '.join(e['trope'] for e in entries)}"


def neighbour_lines(narrative: dict[str, Any], entries: list[dict[str, Any]]) -> list[str]:
    by_id = {c["char_id"]: c for c in narrative["characters"]}
    tropes_of = person_tropes(narrative["characters"])
    lines = [describe(entries), "nearest characters by cosine similarity of z:"]
    for rank, neighbour in enumerate(entries[0]["neighbours"], start=1):
        other = by_id[neighbour["char_id"]]
        lines.append(f"{rank:3d}. {neighbour['similarity']:.3f}  {other['character']} ({other['movie']})"
                     f" — {', '.join(tropes_of[other['person']])}")
    return lines


def explain_lines(entries: list[dict[str, Any]], limit: int | None) -> list[str]:
    first = entries[0]
    top = first["top_tropes"][0]
    lines = [describe(entries),
             f"model: {top['trope']} ({top['prob']:.3f}); {len(first['snippets'])} snippets by attention:"]
    ranked = sorted(enumerate(first["snippets"]), key=lambda item: (-item[1]["weight"], item[0]))[:limit]
    for rank, (index, snippet) in enumerate(ranked, start=1):
        lines.append(f"{rank:3d}. weight {snippet['weight']:.3f} · snippet {index + 1} · scene {snippet['scene']}"
                     f" · {snippet['split']}")
        lines += [f"       {first['character']}: {line}" for line in snippet["D"]]
        lines += [f"       [{line}]" for line in snippet["E"]]
        lines += [f"       {other['speaker']}: {other['text']}" for other in snippet["O"]]
    return lines


# --- a screenplay the model has not seen ----------------------------------------------------
def screenplay_snippets(text: str, character: str, window: int, max_snippets: int, layout: str,
                        source: str, mask_names: bool) -> tuple[list[str], dict[str, list[list[str]]]]:
    """(the cues the character speaks under, stream -> per snippet its lines) as ingest_screenplays,
    names masked (the script's cues and the character's name) when the model was trained so."""
    scenes = parse_screenplay(text, layout)
    counts = cue_counts(scenes)
    cues = set(match_character(character, counts))
    if not cues:
        near = closest(normalize_cue(character), list(counts))
        raise PipelineInputError(f"{source}: no cue for character {character!r}"
                                 + (f"; closest cues: {near}" if near else ""))
    snippets = [window_streams(blocks, cues) for _, _, blocks in
                cap_evenly(list(snippet_windows(scenes, cues, window)), max_snippets)]
    if mask_names:
        masker = NameMasker([character], cues=counts)
        snippets = [mask_streams(snippet, masker) for snippet in snippets]
    lines = {"D": [s["D"] for s in snippets], "E": [s["E"] for s in snippets],
             "O": [[other["text"] for other in s["O"]] for s in snippets]}
    return sorted(cues), lines


def classify_screenplay(
    path: str | Path, character: str, model_file: str | Path, window: int, max_snippets: int, mask_names: bool,
    device: str = "cpu", layout: str = "auto", top: int = 5,
) -> dict[str, Any]:
    """The trained model's top tropes for `character` of the screenplay at `path`."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"{path}: screenplay not found")
    cues, lines = screenplay_snippets(path.read_text(encoding="utf-8", errors="replace"), character, window,
                                      max_snippets, layout, str(path), mask_names)
    torch_device = pick_device(device)
    trained = load_model(model_file, torch_device)
    snippets = unlabelled_snippets(lines, trained.trope_ids, character)
    count = len(lines["D"])
    probs = run_model(trained.model, trained.encode(snippets), [np.arange(count)], 1, torch_device).probs[0]
    best = np.argsort(-probs, kind="stable")[:top]
    return {"cues": cues, "snippets": count, "tropes": [(trained.trope_ids[i], float(probs[i])) for i in best]}


# --- the commands ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    command = parser.prog.split()[-1]  # one module serves three subcommands of flows/cli.py
    if command == "classify":
        parser.add_argument("screenplay", type=Path, help="a screenplay as plain text (IMSDb layout)")
        parser.add_argument("--character", required=True, help="the character's name, as the cues write it or in full")
        parser.add_argument("--model", help="trained AMN (default: model.pt under params paths.amn_dir)")
        parser.add_argument("--layout", default="auto", choices=LAYOUTS, help="screenplay layout (default: guess)")
        parser.add_argument("--top", type=int, default=5, help="tropes to print (default: %(default)s)")
        return
    parser.add_argument("character", help="the character's name as in data/characters.parquet")
    parser.add_argument("--movie", help="the movie, when the name occurs in several")
    parser.add_argument("--narrative", help="stage narrative's output (default: params paths.narrative)")
    if command == "explain":
        parser.add_argument("--top", type=int, default=None, help="snippets to print (default: all)")


def run(args: argparse.Namespace) -> int:
    params = load_params()
    if args.command == "classify":
        cutting = ingest_settings(params)
        result = classify_screenplay(args.screenplay, args.character, args.model or model_path(params), cutting.window,
                                     cutting.max_snippets, cutting.mask_names, param(params, "inference.device", str),
                                     args.layout, args.top)
        print(f"{args.character} in {args.screenplay}: cues {', '.join(result['cues'])}; {result['snippets']} snippets")
        for rank, (trope, prob) in enumerate(result["tropes"], start=1):
            print(f"{rank:3d}. {prob:.3f}  {trope}")
        return 0
    source = args.narrative or str(out_path(params, "narrative"))
    narrative = read_narrative(source)
    entries = find_character(narrative, args.character, args.movie, source)
    lines = neighbour_lines(narrative, entries) if args.command == "neighbours" else explain_lines(entries, args.top)
    print("\n".join(lines))
    return 0
