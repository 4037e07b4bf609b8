"""`personas chat`: talk to the PESS-GEN supporter in the terminal.

Each line read from stdin is a seeker turn (EOF or an empty stdin ends the chat). After each
turn the seeker persona inferred so far is printed, then the supporter's reply with the
strategy it chose. The models are the ones params.yaml names: the generator of the variant
(gen.chat.variant or --variant) under paths.gen_dir and, for a persona variant, its extractor
from gen.extractors. Works with piped input: `printf 'hi\\nI lost my job\\n' | personas chat`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from flows.lib.config import load_params, param
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import NO_PERSONA, SupportExample
from flows.lib.persona_inference import decode_windows, history_windows, merged_persona
from flows.lib.gen_params import decoding_settings, generator_path, variant_settings
from models.generator import SEEKER, SUPPORTER, Decoding, ResponseGenerator, Turn
from models.pess import PersonaExtractor, load_extractor


class ChatSession:
    """The dialogue so far and the models that continue it."""

    def __init__(self, generator: ResponseGenerator, extractor: PersonaExtractor | None, decoding: Decoding,
                 context_turns: int, include_partner: bool):
        self.generator, self.extractor, self.decoding = generator, extractor, decoding
        self.context_turns, self.include_partner = context_turns, include_partner
        self.turns: list[Turn] = []
        self.decoded: dict[str, list[str]] = {}  # extractor window -> sentences: full windows decode once

    def persona(self) -> list[str]:
        """The seeker persona inferred from the whole dialogue so far."""
        if self.extractor is None:
            return []
        windows = history_windows([(t.speaker, t.text) for t in self.turns], self.extractor, self.include_partner)
        decode_windows(self.extractor, windows, max(1, len(windows)), self.decoded)
        return merged_persona(windows, self.decoded)

    def reply(self, seeker_text: str) -> tuple[list[str], str, str]:
        """Take a seeker turn; return (persona so far, strategy, response)."""
        self.turns.append(Turn(SEEKER, seeker_text))
        persona = self.persona()
        seeker_turns = sum(t.speaker == SEEKER for t in self.turns)
        # strategy and response are what the model is asked for: unknown here
        example = SupportExample("chat", len(self.turns), seeker_turns, seeker_turns if persona else 0,
                                 tuple(persona), tuple(self.turns[-self.context_turns:]), "", "")
        strategies, responses = self.generator.respond([example], self.decoding)
        self.turns.append(Turn(SUPPORTER, responses[0][0], strategies[0]))
        return persona, strategies[0], responses[0][0]


def open_session(params: dict[str, Any], variant: str | None, method: str | None) -> ChatSession:
    variants = variant_settings(params)
    variant = variant or param(params, "gen.chat.variant", str)
    if variant not in variants:
        raise PipelineInputError(f"params.yaml: chat variant {variant!r} is not in gen.variants ({', '.join(variants)})")
    if variants[variant]["oracle_strategy"]:
        raise PipelineInputError(f"params.yaml: variant {variant!r} needs the gold strategy, which a chat does not have")
    source = variants[variant]["persona"]
    generator = ResponseGenerator.load(generator_path(params, source))
    extractor = None if source == NO_PERSONA else load_extractor(param(params, f"gen.extractors.{source}", str), device="cpu")
    return ChatSession(generator, extractor, decoding_settings(params, method), param(params, "gen.context_turns", int),
                       param(params, "pess.include_partner", bool))


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
    parser.add_argument("--variant", help="a gen.variants name (default: gen.chat.variant)")
    parser.add_argument("--decoding", choices=["beam", "nucleus"], help="override gen.decoding.method")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    session = open_session(params, args.variant, args.decoding)
    chat(session, sys.stdin, sys.stdout, prompt=sys.stdin.isatty())
    return 0
