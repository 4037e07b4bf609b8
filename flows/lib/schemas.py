"""Every Parquet table of the pipeline, with its fixed pyarrow schema, and the one
validated reader and atomic writer that all stages and crawlers use; also the one parser of
the bundled CMU trope list, which the ingest stages and the crawlers both read."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows.lib.errors import PipelineInputError

# One row per line of the CMU trope list: a (character, trope) pair. A character listed
# under two tropes is two rows with the same freebase_id.
CHARACTERS = pa.schema(
    [
        ("char_id", pa.string()),  # unique per row: "<freebase id>|<trope>"
        ("trope", pa.string()),
        ("character", pa.string()),
        ("movie", pa.string()),
        ("actor", pa.string()),
        ("freebase_id", pa.string()),
        ("split", pa.string()),  # train | val | test under split.unit=character
    ]
)

TROPES = pa.schema(
    [
        ("trope", pa.string()),  # CMU trope id, e.g. dumb_muscle
        ("title", pa.string()),  # TVTropes page title, e.g. DumbMuscle
        ("description", pa.string()),  # never empty: falls back to the title
        ("description_kind", pa.string()),  # full | laconic | title
        ("laconic", pa.string()),
        ("url", pa.string()),
        ("source", pa.string()),
    ]
)

OTHER_LINE = pa.struct([("speaker", pa.string()), ("text", pa.string())])

# A dialogue snippet S = (D, E, O) of one character.
SNIPPETS = pa.schema(
    [
        ("snippet_id", pa.string()),
        ("char_id", pa.string()),
        ("movie", pa.string()),
        ("scene", pa.int32()),  # index of the scene in its script (or quote index for IMDb)
        ("D", pa.list_(pa.string())),  # the character's own lines
        ("E", pa.list_(pa.string())),  # action lines and parentheticals: the context
        ("O", pa.list_(OTHER_LINE)),  # the other characters' lines, with their speakers
        ("split", pa.string()),  # train | val | test
        ("source", pa.string()),  # screenplays | imdb
    ]
)

QUOTE_LINE = pa.struct(
    [
        ("speaker", pa.string()),  # empty for a pure stage direction
        ("text", pa.string()),
        ("directions", pa.list_(pa.string())),  # bracketed directions, e.g. [laughs]
    ]
)

QUOTES = pa.schema(
    [
        ("quote_id", pa.string()),
        ("imdb_id", pa.string()),  # tt0000000
        ("movie", pa.string()),  # CMU movie title
        ("position", pa.int32()),  # order of the quote on its page
        ("lines", pa.list_(QUOTE_LINE)),
        ("url", pa.string()),
    ]
)

TROPE_PAGES = pa.schema(
    [
        ("trope", pa.string()),
        ("title", pa.string()),
        ("url", pa.string()),
        ("description", pa.string()),
        ("laconic", pa.string()),
    ]
)

SCREENPLAY_PAGES = pa.schema(
    [
        ("movie", pa.string()),
        ("url", pa.string()),
        ("text", pa.string()),
    ]
)

EMBEDDINGS = pa.schema(
    [
        ("model", pa.string()),
        ("text_sha256", pa.string()),
        ("embedding", pa.list_(pa.float32())),
    ]
)

# The ESConv seeker's persona so far (stage gen_personas): one row per extractor, conversation
# and inference point, inferred from the conversation up to the point's seeker utterance.
GEN_PERSONAS = pa.schema(
    [
        ("source", pa.string()),  # which extractor: base | pess (gen.extractors)
        ("conversation_id", pa.string()),  # esconv-<split>-<line from 0>
        ("split", pa.string()),  # train | val | test
        ("seeker_turns", pa.int32()),  # seeker utterances read: 3, 6, 9, … (gen.persona_every)
        ("persona", pa.list_(pa.string())),  # persona sentences, first occurrence first
    ]
)

# A persona inferred by the PESS extractor (stage pess_apply) for every ESConv seeker, from the
# whole conversation, and for every movie character, from their own dialogue lines.
PERSONA_SPLITS = pa.schema(
    [
        ("example_id", pa.string()),  # <conversation_id>/<speaker> of the PESS corpus
        ("conversation_id", pa.string()),
        ("split", pa.string()),  # train | val | test_seen | test_unseen | dropped (flows/lib/persona_splits.py)
    ]
)

ESCONV_PERSONAS = pa.schema(
    [
        ("conversation_id", pa.string()),  # esconv-<split>-<line from 0>
        ("split", pa.string()),  # train | val | test
        ("emotion_type", pa.string()),
        ("problem_type", pa.string()),
        ("seeker_turns", pa.int32()),  # seeker utterances in the conversation
        ("windows", pa.int32()),  # history windows decoded (pess.apply.max_chunks at most)
        ("persona", pa.list_(pa.string())),  # persona sentences, first occurrence first
    ]
)

CHARACTER_PERSONAS = pa.schema(
    [
        ("char_id", pa.string()),  # as in SNIPPETS / CHARACTERS
        ("movie", pa.string()),
        ("lines", pa.int32()),  # distinct dialogue lines of the character read
        ("windows", pa.int32()),
        ("persona", pa.list_(pa.string())),
    ]
)

# A character as the trained AMN sees it (stage cluster): all of its snippets read as one
# example, in story order.
CHARACTER_EMBEDDINGS = pa.schema(
    [
        ("char_id", pa.string()),  # as in SNIPPETS / CHARACTERS
        ("n_snippets", pa.int32()),
        ("z", pa.list_(pa.float32())),  # persona representation, d_h
        ("probs", pa.list_(pa.float32())),  # trope probabilities, tropes.parquet order
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "characters": CHARACTERS,
    "tropes": TROPES,
    "snippets": SNIPPETS,
    "quotes": QUOTES,
    "trope_pages": TROPE_PAGES,
    "screenplay_pages": SCREENPLAY_PAGES,
    "embeddings": EMBEDDINGS,
    "gen_personas": GEN_PERSONAS,
    "esconv_personas": ESCONV_PERSONAS,
    "character_personas": CHARACTER_PERSONAS,
    "character_embeddings": CHARACTER_EMBEDDINGS,
}


def read_table(path: str | os.PathLike, schema: pa.Schema) -> pa.Table:
    """Read a Parquet file and check it against `schema`; raise one line naming file and column."""
    path = Path(path)
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    try:
        table = pq.read_table(path)
        names = table.schema.names
    # A damaged footer also surfaces as ArrowNotImplementedError, or as column names
    # that are not UTF-8.
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        raise PipelineInputError(f"{path}: not a readable Parquet file ({error})") from error
    for field in schema:
        if field.name not in names:
            raise PipelineInputError(f"{path}: missing column '{field.name}'")
        actual = table.schema.field(field.name).type
        if not actual.equals(field.type):
            raise PipelineInputError(
                f"{path}: column '{field.name}' has type {actual}, expected {field.type}"
            )
    return table.select(schema.names)


def write_table(table: pa.Table, path: str | os.PathLike, schema: pa.Schema) -> Path:
    """Cast `table` to `schema` and write it atomically: a temporary file, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class atomic_path:
    """Context manager giving a temporary sibling path that replaces `path` on success only."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs are shared files
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


# --- the CMU trope list (cmu_tvtropes/tvtropes.clusters.txt under data.root) -------------------
CLUSTERS = ("cmu_tvtropes", "tvtropes.clusters.txt")


@dataclass(frozen=True)
class TropeCharacter:
    trope: str
    character: str
    movie: str
    actor: str
    freebase_id: str

    @property
    def char_id(self) -> str:
        return f"{self.freebase_id}|{self.trope}"


def read_clusters(path: Path) -> list[TropeCharacter]:
    """Parse `trope<TAB>{"char", "movie", "id", "actor"}` lines; a bad line names file and line."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    rows: list[TropeCharacter] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            trope, _, payload = line.rstrip("\n").partition("\t")
            try:
                record = json.loads(payload)
            except json.JSONDecodeError:
                record = None
            if not trope.strip() or not isinstance(record, dict):
                raise PipelineInputError(f"{path}:{number}: expected 'trope<TAB>{{json object}}'")
            for key in ("char", "movie", "id"):
                if not isinstance(record.get(key), str) or not record[key].strip():
                    raise PipelineInputError(f"{path}:{number}: field '{key}' missing or empty")
            row = TropeCharacter(
                trope.strip(), record["char"].strip(), record["movie"].strip(),
                str(record.get("actor") or "").strip(), record["id"].strip(),
            )
            if row.char_id in seen:
                raise PipelineInputError(
                    f"{path}:{number}: character '{row.freebase_id}' repeats trope '{row.trope}' "
                    f"(line {seen[row.char_id]})"
                )
            seen[row.char_id] = number
            rows.append(row)
    if not rows:
        raise PipelineInputError(f"{path}: no characters")
    return rows
