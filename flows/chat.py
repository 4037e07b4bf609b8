"""`personas chat`: talk to an emotional-support supporter in the terminal.

Each line read from stdin is a seeker turn (EOF or an empty stdin ends the chat). After each
turn the seeker persona inferred so far is printed, then the supporter's reply with the
strategy it chose. The supporter is gen.chat.supporter (or --supporter): `retrieval`, the
training supporter turn whose context is nearest (paths.gen_retriever, written by
gen_references: real sentences, what `make run` leaves), or a gen.variants name, whose
generator under paths.gen_dir answers and whose persona source's extractor (gen.extractors)
infers the persona it reads. With `retrieval` the persona shown comes from gen.chat.extractor.
Works with piped input: `printf 'hi\\nI lost my job\\n' | personas chat`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from flows.lib.config import load_params, out_path, param
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import NO_PERSONA, SupportExample
from flows.lib.gen_params import decoding_settings, generator_path, variant_settings
from flows.lib.persona_inference import (Extractor, decode_windows, history_windows, load_persona_extractor, merged_persona,
                                         own_line_personas)
from flows.lib.support_references import RetrievalSupporter
from models.generator import SEEKER, SUPPORTER, Decoding, ResponseGenerator, Turn

RETRIEVAL = "retrieval"


class ChatSession:
    """The dialogue so far and the models that continue it."""

    def __init__(self, supporter: ResponseGenerator | RetrievalSupporter, extractor: Extractor | None, decoding: Decoding,
                 context_turns: int, include_partner: bool):
        self.supporter, self.extractor, self.decoding = supporter, extractor, decoding
        self.context_turns, self.include_partner = context_turns, include_partner
        self.turns: list[Turn] = []
        self.decoded: dict[str, list[str]] = {}  # extractor window -> sentences: full windows decode once

    def persona(self) -> list[str]:
        """The seeker persona inferred from the whole dialogue so far."""
        if self.extractor is None:
            return []
        turns = [(t.speaker, t.text) for t in self.turns]
        own = own_line_personas(self.extractor, [turns])
        if own is not None:  # a selector reads the seeker lines at once
            return own[0]
        windows = history_windows(turns, self.extractor, self.include_partner)
        decode_windows(self.extractor, windows, max(1, len(windows)), self.decoded)
        return merged_persona(windows, self.decoded)

    def reply(self, seeker_text: str) -> tuple[list[str], str, str]:
        """Take a seeker turn; return (persona so far, strategy, response)."""
        self.turns.append(Turn(SEEKER, seeker_text))
        persona = self.persona()
        if isinstance(self.supporter, RetrievalSupporter):
            strategy, response = self.supporter.respond([(t.speaker, t.text) for t in self.turns])
        else:
            seeker_turns = sum(t.speaker == SEEKER for t in self.turns)
            # strategy and response are what the model is asked for: unknown here
            example = SupportExample("chat", len(self.turns), seeker_turns, seeker_turns if persona else 0,
                                     tuple(persona), tuple(self.turns[-self.context_turns:]), "", "")
            strategies, responses = self.supporter.respond([example], self.decoding)
            strategy, response = strategies[0], responses[0][0]
        self.turns.append(Turn(SUPPORTER, response, strategy))
        return persona, strategy, response


def open_session(params: dict[str, Any], supporter: str | None, method: str | None) -> ChatSession:
    supporter = supporter or param(params, "gen.chat.supporter", str)
    settings = (decoding_settings(params, method), param(params, "gen.context_turns", int), param(params, "pess.include_partner", bool))
    extractors = param(params, "gen.extractors", dict)
    if supporter == RETRIEVAL:
        source = param(params, "gen.chat.extractor", str)
        if source != NO_PERSONA and source not in extractors:
            raise PipelineInputError(f"params.yaml: gen.chat.extractor {source!r} is not in gen.extractors ({', '.join(extractors)})")
        extractor = None if source == NO_PERSONA else load_persona_extractor(extractors[source], device="cpu")
        return ChatSession(RetrievalSupporter.load(out_path(params, "gen_retriever")), extractor, *settings)
    variants = variant_settings(params)
    if supporter not in variants:
        raise PipelineInputError(f"params.yaml: chat supporter {supporter!r} is neither {RETRIEVAL} nor in gen.variants "
                                 f"({', '.join(variants)})")
    if variants[supporter]["oracle_strategy"]:
        raise PipelineInputError(f"params.yaml: variant {supporter!r} needs the gold strategy, which a chat does not have")
    source = variants[supporter]["persona"]
    generator = ResponseGenerator.load(generator_path(params, source))
    extractor = None if source == NO_PERSONA else load_persona_extractor(extractors[source], device="cpu")
    return ChatSession(generator, extractor, *settings)


def chat(session: ChatSession, lines: TextIO, out: TextIO, prompt: bool) -> int:
    """The loop: one reply per non-empty line until EOF; returns the number of seeker turns."""
    turns = 0
    while True:
        if prompt:
            out.write("you> ")
            out.flush()
        line = lines.readline()
        if not line:
            return turns
        text = " ".join(line.split())
        if not text:
            continue
        persona, strategy, response = session.reply(text)
        turns += 1
        out.write(f"persona so far: {' | '.join(persona) if persona else '(none yet)'}\n")
        out.write(f"supporter {strategy}: {response}\n")
        out.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", help="params file (default: ./params.yaml)")
    parser.add_argument("--supporter", help=f"{RETRIEVAL} or a gen.variants name (default: gen.chat.supporter)")
    parser.add_argument("--decoding", choices=["beam", "nucleus"], help="override gen.decoding.method")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    session = open_session(params, args.supporter, args.decoding)
    chat(session, sys.stdin, sys.stdout, prompt=sys.stdin.isatty())
    return 0
