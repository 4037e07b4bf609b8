"""The unseen-character trope task on the bundled IMDb quotes, as the references and the AMN
read it: characters with their roles (flows/lib/ziems.py), their snippets with names masked
(flows/lib/name_mask.py), the 72 tropes in a fixed order and the text of each trope that the
zero-shot reference and the Knowledge-Store memory embed."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flows.lib.errors import PipelineInputError
from flows.lib.name_mask import NameMasker
from flows.lib.ziems import CLUSTERS, ZiemsCharacter, read_cmu_records, read_test_rows, read_ziems_characters, snippet_windows, ziems_split

DESCRIPTIONS = ("tvtropes_descriptions", "trope_descriptions.jsonl")
ZIEMS = "ziems_tropes"


@dataclass
class UnseenSettings:
    window: int = 4  # quote lines per snippet
    val_share: float = 0.15  # of the pool without the shared_movie characters, by movie group
    seed: int = 13
    empty_rows: tuple[int, ...] = (63,)  # tropes.csv rows known to have no quotes


@dataclass
class UnseenTask:
    trope_ids: list[str]  # class order
    trope_texts: list[str]  # "Title words. description", per trope
    characters: list[ZiemsCharacter]
    snippets: list[list[str]]  # per character: masked snippet texts, in quote order
    split_counts: dict[str, int]

    def gold(self, *roles: str) -> list[list[int]]:
        """Per character of `roles`: the class ids of all its tropes, in tropes.csv order."""
        class_of = {t: i for i, t in enumerate(self.trope_ids)}
        return [[class_of[t] for t in c.tropes] for c in self.characters if c.role in roles]

    def indices(self, *roles: str) -> np.ndarray:
        return np.array([i for i, c in enumerate(self.characters) if c.role in roles], dtype=np.int64)

    def all_texts(self) -> list[str]:
        """Every text the models embed: the snippets, then the trope texts."""
        return [text for texts in self.snippets for text in texts] + self.trope_texts


def snippet_table(task: UnseenTask):
    """The task's masked snippets as a SNIPPETS table (flows/lib/schemas.py), source 'ziems', so
    that the word-level AMN of Table 2 reads this source like the others: one stream, so the whole
    window is D and E, O are empty; scene = window index; split = role. The shared_movie
    characters are left out (the headline trains without them), and each character is keyed by
    its first trope's char_id, since the snippet pipeline has one trope per character."""
    import pyarrow as pa

    from flows.lib.schemas import SNIPPETS

    rows = [
        {"snippet_id": f"ziems-{c.row}-{i}", "char_id": f"{c.freebase_id}|{c.tropes[0]}", "movie": c.movies[0],
         "scene": i, "D": text.split("\n"), "E": [], "O": [], "split": c.role, "source": "ziems"}
        for c, texts in zip(task.characters, task.snippets) if c.role != "shared_movie"
        for i, text in enumerate(texts)
    ]
    return pa.Table.from_pylist(rows, schema=SNIPPETS)


def trope_texts(path: Path) -> tuple[list[str], list[str]]:
    """(trope ids in file order, 'Title words. description' per trope); a trope with no text at
    all (3 of the 72) is its title words alone."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    ids, texts = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            trope, title = record["trope"], record["title"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise PipelineInputError(f"{path}:{number}: expected a JSON object with 'trope' and 'title'") from None
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", title)
        body = (record.get("description") or record.get("laconic") or "").strip()
        ids.append(trope)
        texts.append(f"{words}. {body}" if body else words)
    return ids, texts


def load_unseen_task(data_root: Path, settings: UnseenSettings) -> UnseenTask:
    data_root = Path(data_root)
    folder = data_root / ZIEMS
    clusters = data_root.joinpath(*CLUSTERS)
    characters = read_ziems_characters(folder, clusters, tuple(settings.empty_rows))
    test_rows = read_test_rows(folder, len(characters) + len(settings.empty_rows))
    kept = {c.row for c in characters}
    dropped = [row for row in test_rows if row not in kept]
    if dropped:
        raise PipelineInputError(f"{folder / 'test.json'}: test row {dropped[0]} has no quotes")
    counts = ziems_split(characters, test_rows, settings.val_share, settings.seed)
    # test.json order, so that the answer files' positions line up with the test characters
    position = {row: i for i, row in enumerate(test_rows)}
    characters.sort(key=lambda c: (c.role == "test", position.get(c.row, -1), c.row))
    trope_ids, texts = trope_texts(data_root.joinpath(*DESCRIPTIONS))
    unknown = sorted({t for c in characters for t in c.tropes} - set(trope_ids))
    if unknown:
        raise PipelineInputError(f"{data_root.joinpath(*DESCRIPTIONS)}: no description of trope '{unknown[0]}'")
    masker = NameMasker(r.character for r in read_cmu_records(clusters))
    snippets = [[masker.mask("\n".join(w)) for w in snippet_windows(c.lines, settings.window)] for c in characters]
    return UnseenTask(trope_ids, texts, characters, snippets, counts)


def unseen_settings(params: dict) -> UnseenSettings:
    """The task part of params.yaml `unseen:`, checked."""
    from flows.lib.config import PARAMS_FILE, param

    settings = UnseenSettings(
        window=param(params, "unseen.window", int),
        val_share=float(param(params, "unseen.val_share", (int, float))),
        seed=param(params, "unseen.seed", int),
        empty_rows=tuple(param(params, "unseen.empty_rows", list)),
    )
    if settings.window < 1 or not 0 < settings.val_share < 1:
        raise PipelineInputError(f"{PARAMS_FILE}: 'unseen.window' must be >= 1 and 'unseen.val_share' in (0, 1)")
    return settings
