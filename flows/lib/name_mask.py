"""Masking character names before any text is tokenised or embedded, for every dialogue source:
a model (or a TF-IDF) must not learn who is speaking from the names in the lines.

A name is masked word by word: each word of a name (the character's own name and cue forms, the
other characters of its movie, every CMU character name) becomes MASK_TOKEN where it occurs
capitalised as written or in capitals, also with a possessive 's; a run of masked words becomes
one MASK_TOKEN. Speaker cues of a script ("INDY", "MCFLY") are written in capitals, so their words
match any capitalised spelling ("Indy", "McFly"), never a lower-case one ("the guard"). Title words ("Doctor", "Mr") and English stop words stay, since they are roles or
grammar, not identity ("Professor Keenbean" -> "Professor [NAME]"); so are a few generic
nouns that CMU names contain ("Man with No Name")."""
from __future__ import annotations

import re
from typing import Iterable

MASK_TOKEN = "[NAME]"
_WORD = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*")
_RUN = re.compile(r"\[NAME\](?:[\s,.]*\[NAME\])+")
TITLES = frozenset(
    "mr mrs ms miss dr doctor doc professor prof sir lady lord captain capt sergeant sgt lieutenant lt colonel "
    "col general major private officer agent detective inspector judge father mother sister brother uncle aunt "
    "king queen prince princess count duke baron president senator governor mayor sheriff deputy chief coach "
    "reverend rev saint st jr sr the old young big little mister madame monsieur señor senor don earl man woman boy girl guy kid name singing".split()
)


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def name_words(names: Iterable[str]) -> frozenset[str]:
    """The maskable words of some names: capitalised, two letters or more, no title, role or
    stop word."""
    skip = TITLES | _stop_words()
    words = set()
    for name in names:
        for word in _WORD.findall(name):
            if len(word) >= 2 and word[0].isupper() and word.lower() not in skip:
                words.add(word)
    return frozenset(words)


class NameMasker:
    """mask(text) replaces the words of `names` and of the speaker `cues` by MASK_TOKEN (see the
    module docstring)."""

    def __init__(self, names: Iterable[str], cues: Iterable[str] = ()):
        words = name_words(names)
        self.words = words | {w.upper() for w in words}
        self.cue_words = frozenset(w.lower() for w in name_words(cues))

    def _is_name_word(self, word: str) -> bool:
        return word in self.words or (word[:1].isupper() and word.lower() in self.cue_words)

    def _is_name(self, word: str) -> bool:
        if self._is_name_word(word):
            return True
        return word[-2:] in ("'s", "'S") and self._is_name_word(word[:-2])

    def mask(self, text: str) -> str:
        masked = _WORD.sub(lambda m: MASK_TOKEN if self._is_name(m.group(0)) else m.group(0), text)
        return _RUN.sub(MASK_TOKEN, masked)

    def name_tokens(self, text: str) -> list[str]:
        """The words of `text` that are names: what a names-only reference reads."""
        return [w for w in _WORD.findall(text) if self._is_name(w)]
