"""The extractive reference persona: the speaker's own sentences that state something about
themselves, kept as written. Every sentence it returns is the speaker's, so it is grounded by
construction; it is the simple reference any trained extractor must beat on the same inputs.

A sentence is kept when it is
- a first-person statement (i, me, my, mine, myself, we, us, our, ...; "i'm" and "i've" count
  through their "i"),
- not a question (it does not end with "?"),
- not greeting or filler only ("Hi!", "Me too!", "I'm glad to hear that."): some word is left
  once pronouns and the words of greetings, thanks and acknowledgements are taken out,
- between min_words and max_words words long.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from flows.lib.persona_data import speaker_sentences

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
FIRST_PERSON = frozenset(
    "i i'm i've i'd i'll im ive me my mine myself we we're we've we'd we'll us our ours ourselves".split()
)
# Words of greetings, thanks, agreement and small talk: a sentence made of these and pronouns
# says nothing about the speaker.
FILLER = frozenset(
    """hi hello hey hiya howdy good morning afternoon evening night day bye goodbye see ya later soon
    thanks thank you your you're so much very too also welcome pleasure nice great glad sorry happy
    meet meeting talk talking chat chatting to hear that this it it's is am are was be been
    yes yeah yep yup no nope not ok okay oh ah aw wow cool awesome sure agree know think guess hope
    see understand mean lol haha hahaha hehe um uh hmm well fine doing do alright all right
    same here there a an the and just really totally definitely absolutely of course what have has
    had will would can could should""".split()
)
DEFAULT_MIN_WORDS = 3
DEFAULT_MAX_WORDS = 25


def sentence_words(sentence: str) -> list[str]:
    """Lower-cased words; curly apostrophes read as straight ones."""
    return _WORD.findall(sentence.lower().replace("\u2019", "'"))


def is_first_person(words: Sequence[str]) -> bool:
    return any(word in FIRST_PERSON for word in words)


def is_filler_only(words: Sequence[str]) -> bool:
    return all(word in FILLER or word in FIRST_PERSON for word in words)


def is_self_statement(sentence: str, min_words: int = DEFAULT_MIN_WORDS, max_words: int = DEFAULT_MAX_WORDS) -> bool:
    """The rule of the module docstring, for one sentence."""
    words = sentence_words(sentence)
    return (
        min_words <= len(words) <= max_words
        and not sentence.rstrip().endswith("?")
        and is_first_person(words)
        and not is_filler_only(words)
    )


def extractive_personas(
    utterances: list[str], min_words: int = DEFAULT_MIN_WORDS, max_words: int = DEFAULT_MAX_WORDS
) -> list[str]:
    """The speaker's own sentences (speaker_sentences: in order, a repeat kept once) that are
    self-statements, as written."""
    return [s for s in speaker_sentences(utterances) if is_self_statement(s, min_words, max_words)]


@dataclass(frozen=True)
class ExtractiveExtractor:
    """extractive_personas behind the `.extract(utterance lists)` interface every extractor shares."""

    min_words: int = DEFAULT_MIN_WORDS
    max_words: int = DEFAULT_MAX_WORDS

    def extract(self, utterance_lists: list[list[str]]) -> list[list[str]]:
        return [extractive_personas(utterances, self.min_words, self.max_words) for utterances in utterance_lists]
