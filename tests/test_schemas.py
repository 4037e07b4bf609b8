import pyarrow as pa
import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import SNIPPETS, TROPES, read_table, write_table


def test_round_trip_keeps_schema(tmp_path):
    table = pa.table(
        {
            "trope": ["dumb_muscle"],
            "title": ["DumbMuscle"],
            "description": ["Long on brawn."],
            "description_kind": ["laconic"],
            "laconic": ["Long on brawn."],
            "url": ["https://tvtropes.org/pmwiki/pmwiki.php/Main/DumbMuscle"],
            "source": ["test"],
        }
    )
    path = write_table(table, tmp_path / "tropes.parquet", TROPES)
    assert read_table(path, TROPES).to_pylist() == table.to_pylist()
    assert not list(tmp_path.glob("*.tmp"))


def test_wrong_schema_names_file_and_column(tmp_path):
    path = write_table(
        pa.table({"trope": ["x"], "title": ["X"], "description": ["d"], "description_kind": ["full"],
                  "laconic": [""], "url": [""], "source": [""]}),
        tmp_path / "tropes.parquet",
        TROPES,
    )
    with pytest.raises(PipelineInputError, match=r"tropes\.parquet: missing column 'snippet_id'"):
        read_table(path, SNIPPETS)


def test_corrupt_file_is_one_line_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(PipelineInputError) as error:
        read_table(path, TROPES)
    assert "bad.parquet" in str(error.value) and "\n" not in str(error.value)


def test_failed_write_keeps_previous_file(tmp_path):
    good = pa.table({"trope": ["a"], "title": ["A"], "description": ["d"], "description_kind": ["full"],
                     "laconic": [""], "url": [""], "source": [""]})
    path = write_table(good, tmp_path / "tropes.parquet", TROPES)
    with pytest.raises(KeyError):
        write_table(pa.table({"trope": ["b"]}), path, TROPES)
    assert read_table(path, TROPES).to_pylist() == good.to_pylist()
