"""`personas repro` hands every argument it does not know to `dvc repro`; other commands refuse them."""
import pytest

import flows.repro
from flows import cli


@pytest.mark.parametrize("argv, dvc_args", [
    (["repro"], []),
    (["repro", "evaluate"], ["evaluate"]),
    (["repro", "-f", "evaluate"], ["-f", "evaluate"]),
    (["repro", "-s", "train"], ["-s", "train"]),
])
def test_repro_passes_its_arguments_to_dvc(monkeypatch, argv, dvc_args):
    seen = []
    monkeypatch.setattr(flows.repro, "run", lambda args: seen.append(args.dvc_args) or 0)
    assert cli.main(argv) == 0
    assert seen == [dvc_args]


def test_other_commands_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as error:
        cli.main(["doctor", "--bogus"])
    assert error.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
