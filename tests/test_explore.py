import json

import pytest
from eval_tiny import tiny_project

from flows import cli
from flows.lib.errors import PipelineInputError
from flows.explore import find_character, screenplay_snippets

SCRIPT = "imsdb_scripts/scripts/Silence-of-the-Lambs.txt"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tiny_project(tmp_path_factory)


@pytest.fixture
def in_project(project, monkeypatch):
    monkeypatch.chdir(project)  # the commands read ./params.yaml, data/narrative.json, artifacts/amn/model.pt
    monkeypatch.delenv("PERSONAS_PARAMS", raising=False)
    return project


def test_a_name_in_two_movies_needs_the_movie_and_a_person_with_two_tropes_is_one_character():
    narrative = {"characters": [
        {"char_id": "/m/1|hero", "character": "John Smith", "movie": "Alpha", "trope": "hero"},
        {"char_id": "/m/2|rogue", "character": "John Smith", "movie": "Beta", "trope": "rogue"},
        {"char_id": "/m/2|coward", "character": "John Smith", "movie": "Beta", "trope": "coward"},
    ]}
    with pytest.raises(PipelineInputError, match=r"'john smith' is in 2 movies \(Alpha, Beta\); add --movie"):
        find_character(narrative, "john smith", None, "narrative.json")
    found = find_character(narrative, "John Smith", "beta", "narrative.json")
    assert [c["trope"] for c in found] == ["rogue", "coward"]
    with pytest.raises(PipelineInputError, match=r"no character named 'Jon Smith'; closest: John Smith$"):
        find_character(narrative, "Jon Smith", None, "narrative.json")


def test_screenplay_snippets_are_cut_like_ingest(shared_data):
    from flows.lib.screenplay_snippets import snippet_windows
    from flows.lib.screenplay import parse_screenplay

    text = (shared_data / SCRIPT).read_text(encoding="utf-8", errors="replace")
    cues, lines = screenplay_snippets(text, "Dr. Lecter", window=6, max_snippets=30, layout="auto", source=SCRIPT,
                                      mask_names=False)
    assert cues == ["DR LECTER"] and len(lines["D"]) == 30 == len(lines["E"]) == len(lines["O"])
    assert all(lines["D"])  # every snippet holds a line of his
    windows = list(snippet_windows(parse_screenplay(text), {"DR LECTER"}, 6))
    assert len(windows) > 30  # capped evenly, first and last window kept
    assert lines["D"][0] == [b.text for b in windows[0][2] if b.kind == "dialogue" and b.speaker == "DR LECTER"]
    assert lines["D"][-1] == [b.text for b in windows[-1][2] if b.kind == "dialogue" and b.speaker == "DR LECTER"]
    _, masked = screenplay_snippets(text, "Dr. Lecter", window=6, max_snippets=30, layout="auto", source=SCRIPT,
                                    mask_names=True)  # as ingest.mask_names trains the model
    said = " ".join(line for snippet in lines["D"] + lines["O"] for line in snippet)
    said_masked = " ".join(line for snippet in masked["D"] + masked["O"] for line in snippet)
    assert "Clarice" in said and "Lecter" in said  # a cue (CLARICE) and his own name, before masking
    assert "Clarice" not in said_masked and "Lecter" not in said_masked and "[NAME]" in said_masked


@pytest.mark.slow
def test_neighbours_prints_the_ten_nearest(in_project, capsys):
    assert cli.main(["neighbours", "char 00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    narrative = json.loads((in_project / "data" / "narrative.json").read_text())
    by_id = {c["char_id"]: c for c in narrative["characters"]}
    me = next(c for c in narrative["characters"] if c["character"] == "Char 00")
    assert lines[0] == f"Char 00 (Movie 0) — trope {me['trope']}"
    assert len(lines) == 2 + 10
    for line, neighbour in zip(lines[2:], me["neighbours"]):
        assert f"{neighbour['similarity']:.3f}  {by_id[neighbour['char_id']]['character']} (" in line


@pytest.mark.slow
def test_explain_lists_snippets_by_attention(in_project, capsys):
    assert cli.main(["explain", "Char 01", "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    ranked = [line for line in out if line.lstrip()[:2] in ("1.", "2.", "3.")]
    weights = [float(line.split("weight ")[1].split()[0]) for line in ranked]
    assert len(weights) == 3 and weights == sorted(weights, reverse=True)
    narrative = json.loads((in_project / "data" / "narrative.json").read_text())
    me = next(c for c in narrative["characters"] if c["character"] == "Char 01")
    assert weights[0] == pytest.approx(max(s["weight"] for s in me["snippets"]), abs=1e-3)


@pytest.mark.slow
def test_unknown_character_is_one_line_with_the_closest_names(in_project, capsys):
    assert cli.main(["neighbours", "Chr 00"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no character named 'Chr 00'; closest: Char 00, " in error


@pytest.mark.slow
def test_classify_a_real_screenplay(in_project, shared_data, capsys):
    assert cli.main(["classify", str(shared_data / SCRIPT), "--character", "Dr. Lecter"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("cues DR LECTER; 30 snippets")
    probs = [float(line.split()[1]) for line in lines[1:]]
    tropes = {line.split()[2] for line in lines[1:]}
    assert len(probs) == 4 and probs == sorted(probs, reverse=True) and 0.99 <= sum(probs) <= 1.01  # 4 tiny tropes
    assert tropes == set(json.loads((in_project / "data" / "narrative.json").read_text())["tropes"])
    assert cli.main(["classify", str(shared_data / SCRIPT), "--character", "Hannibal Lecter"]) == 2
    assert "no cue for character 'Hannibal Lecter'; closest cues: DR LECTER" in capsys.readouterr().err
