import io
import os
import subprocess
import sys

import pytest

from flows import PROJECT_ROOT
from flows.chat import ChatSession, chat
from flows.cli import main
from models.generator import Decoding
from gen_tiny import (
    SHORT_DECODING,
    save_tiny_models,
    strategies,
    tiny_extractor,
    tiny_generator,
    write_tiny_params,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


@pytest.fixture(scope="module")
def generator(shared_data):
    return tiny_generator(shared_data).eval()


def test_chat_loop_replies_to_each_line_until_eof(shared_data, generator):
    session = ChatSession(generator, tiny_extractor().eval(), SHORT_DECODING, context_turns=4, include_partner=True)
    out = io.StringIO()
    assert chat(session, io.StringIO("hello\n\n  i lost my job  \n"), out, prompt=False) == 2
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines[::2]] == ["persona so far"] * 2
    assert all(line.startswith("supporter [") for line in lines[1::2])
    assert [t.speaker for t in session.turns] == ["seeker", "supporter", "seeker", "supporter"]
    assert session.turns[2].text == "i lost my job"
    assert all(t.strategy in strategies(shared_data) for t in session.turns[1::2])


def test_chat_without_persona_source_prints_none_yet(generator):
    session = ChatSession(generator, None, Decoding(method="nucleus", max_new_tokens=4), context_turns=4, include_partner=True)
    out = io.StringIO()
    chat(session, io.StringIO("hi there\n"), out, prompt=False)
    assert out.getvalue().startswith("persona so far: (none yet)\n")


def test_missing_artifact_is_a_one_line_error(tmp_path, shared_data, capsys, monkeypatch):
    params = write_tiny_params(tmp_path, shared_data)
    monkeypatch.chdir(tmp_path)  # params paths are relative to the working directory: nothing there
    assert main(["chat", "--params", str(params)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("personas chat: error: ") and "checkpoint not found" in error
    assert main(["chat", "--params", str(params), "--supporter", "oracle"]) == 2
    assert "needs the gold strategy" in capsys.readouterr().err


@pytest.mark.slow
def test_personas_chat_with_piped_stdin(tmp_path, shared_data):
    save_tiny_models(tmp_path, shared_data)
    params = write_tiny_params(tmp_path, shared_data)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "chat", "--params", str(params)], cwd=tmp_path, env=env,
                          input="Hello.\nI lost my job and I feel anxious.\nMy boss never answers.\n",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 6  # no prompt without a terminal; EOF ends the chat
    assert all(line.startswith("persona so far: ") for line in lines[::2])
    replies = lines[1::2]
    assert all(any(line.startswith(f"supporter {s}: ") for s in strategies(shared_data)) for line in replies)


def test_retrieval_supporter_answers_with_a_training_reply(shared_data):
    """The default chat of `make run`: replies are real supporter turns, the persona the seeker's own sentences."""
    from flows.lib.esconv_examples import build_examples, load_split
    from flows.lib.persona_extractive import ExtractiveExtractor
    from flows.lib.support_references import RetrievalSupporter, context_embedder

    train = build_examples(load_split(shared_data / "esconv", "train", strategies(shared_data), 3), None, 4, 3)
    supporter = RetrievalSupporter.fit(train, context_embedder(None), 2, 4)
    session = ChatSession(supporter, ExtractiveExtractor(), SHORT_DECODING, context_turns=4, include_partner=True)
    out = io.StringIO()
    assert chat(session, io.StringIO("I lost my job last week and I feel useless.\n"), out, prompt=False) == 1
    persona_line, reply_line = out.getvalue().splitlines()
    assert persona_line == "persona so far: I lost my job last week and I feel useless."
    strategy, response = reply_line.removeprefix("supporter ").split(": ", 1)
    assert (strategy, response) in {(e.strategy, e.response) for e in train}
