"""Screenplay parsing and character matching for raw IMSDb text. Pure functions, no I/O.

`parse_screenplay(text, layout)` turns a script into scenes of blocks (dialogue, action,
parenthetical, heading, transition). A character cue follows the rule that produced the
`n_lines` counts of shared/data/imsdb_scripts: a line of at most 40 characters (after its
parentheticals are removed) with no lower-case letter, that is no scene heading, transition or
camera direction, followed directly by a line with lower-case letters or starting with "(".
Layouts (movie_script_map.tsv's parse_mode; "auto" guesses them):
  strict  the rule above;
  blank   up to two blank lines may separate a cue from its dialogue;
  colon   "NAME: text" lines (Star Wars I and III), also "NAME [direction]: text" and
          "NAME [V.O.]: text" (the bracket is a parenthetical, or a cue extension dropped);
  resplit a script flattened onto a few huge lines is first split at runs of 6+ spaces, the
          run kept as the indentation of the piece (Training Day), then parsed as strict.
Dialogue ends at a blank line, a heading, a transition, or a line indented clearly less than
the dialogue (scripts with no blank line between speech and action). A speech that starts at
the left edge (flush-left scripts with no blank lines) is told from the action after it by
trailing spaces instead: see `_ends_flush_speech`. A line opening with "(quietly)" is a
parenthetical and the words after it are speech; "HOBBS Hey!" is a cue and its speech on one
line when HOBBS is a cue elsewhere in the script.

`match_character(character, cue_counts, aliases)` finds the cues a CMU character speaks under.
"""
from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from flows.lib.errors import PipelineInputError

BLOCK_KINDS = ("dialogue", "action", "parenthetical", "heading", "transition")
LAYOUTS = ("auto", "strict", "blank", "colon", "resplit")

MAX_CUE_LENGTH = 40
MAX_BLANKS_BEFORE_DIALOGUE = 2  # blank layout
MAX_PARENTHETICAL_LINES = 6  # an unclosed "(" stops swallowing lines after this many
DEDENT_ENDS_DIALOGUE = 3  # a line this much left of the dialogue margin is action again
FLUSH_LEFT = 3  # a speech starting this close to the left edge cannot be told from action by indentation
MAX_INLINE_CUE_WORDS = 5  # "DR. JOHN SMITH (O.S.) Hey!"
BLANKLESS_SHARE = 0.02  # at most this many blank lines per line of text: a script "with no blank lines"
RESPLIT_MIN_LINE = 1000  # only lines this long are split at wide gaps
RESPLIT_GAP = re.compile(r"(?<=\S)( {6,})")


@dataclass(frozen=True)
class Block:
    kind: str  # one of BLOCK_KINDS
    text: str
    speaker: str = ""  # normalized cue of a dialogue or parenthetical block


@dataclass(frozen=True)
class Scene:
    heading: str  # "" for the text before the first heading
    blocks: tuple[Block, ...]


# --- line classes -----------------------------------------------------------------------

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
# UTF-8 read as cp1252 or latin-1 ("SeÃ±or"): a lead byte, then 1-3 continuation bytes
# (0x80-0xBF), which cp1252 shows as its specials (€, ’ ...) or latin-1 as themselves.
_CP1252_SPECIALS = bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf" + re.escape(_CP1252_SPECIALS) + "]{1,3}")
# "12 INT. ...", "12A. EXT. ...", "Sc 10  EXT  BEACH": the scene number, captured
_SCENE_NUMBER = r"(?:[Ss][Cc](?:[Ee][Nn][Ee])?\.?\s*)?([0-9]{1,4}[A-Z]?)[.:)]?\s+"
_LEADING_SCENE_NUMBER = re.compile("^" + _SCENE_NUMBER)
_HEADING = re.compile(
    "^(?:" + _SCENE_NUMBER + r")?(?:(?:INT|EXT|Int|Ext)(?![A-Za-z])|I/E\b|E/I\b|INTERIOR\b|EXTERIOR\b|EST\.)"
)
_TIME_OF_DAY = (
    r"(?:DAY|NIGHT|MORNING|AFTERNOON|EVENING|DAWN|DUSK|SUNSET|SUNRISE|NOON|MIDNIGHT|PREDAWN"
    r"|LATER|CONTINUOUS|MOMENTS LATER|SAME TIME)"
)
# "BUTTERCUP'S FARM - DAY", "SCENE I - CHER'S HOUSE": headings without INT./EXT.
_PLACE_HEADING = re.compile(
    r"^(?:SCENE\s+[IVXLC0-9]+\b.{0,80}|[^a-z]{2,80}?\s[-\u2013\u2014]+\s*" + _TIME_OF_DAY + r"\b[^a-z]{0,30})$"
)
_REVISION_MARK = re.compile(r"\s{2,}\*+$")  # "*" in the right margin flags a revised line
_TRANSITION = re.compile(
    r"^(?:(?:[A-Z]+\s+){0,2}(?:CUT|DISSOLVE|FADE|WIPE|IRIS)(?:\s+(?:IN|OUT|TO|BACK|UP|DOWN|ON|OVER|FROM"
    r"|AWAY|THROUGH|BLACK|WHITE|SLOWLY)){0,3}\s*[:.]*"
    r"|(?:[A-Z]+\s+){1,3}TO:|THE END\.?|END CREDITS\.?|INTERCUT(?:\s+WITH)?:?)$"
)
_CAMERA = re.compile(
    r"^(?:ANGLE|CLOSE|CLOSEUP|CLOSE-UP|EXTREME|INSERT|BACK TO|WIDE|WIDER|WIDEN|REVERSE|OVERHEAD"
    r"|AERIAL|TRACKING|MONTAGE|SERIES OF|FLASHBACK|END OF|SUPER|TITLE|MAIN TITLE|SUBTITLE|LATER"
    r"|MOMENTS LATER|CONTINUOUS|ESTABLISHING|FULL SHOT|MEDIUM|TWO SHOT|LONG SHOT|SLOW MOTION"
    r"|SPLIT SCREEN|ON)\b|\bPOV\b|\bANGLE\b|\bSHOT\b"
)
_PAGE_NOISE = re.compile(
    r"^(?:\*+|\(?\s*CONTINUED\s*\)?\s*:?\s*(?:\(\s*[0-9]+\s*\))?|\(\s*MORE\s*\)|\(?CONT'D\)?"
    r"|(?:[Pp]age\s*)?[0-9]{1,4}[A-Z]?\s*\.?|-+\s*[0-9]{1,4}\s*-+"
    r"|[0-9]{1,4}[A-Z]?\s+CONTINUED\s*:?(?:\s*\(\s*[0-9]+\s*\))?(?:\s+[0-9]{1,4}[A-Z]?)?)$"
)
# running page headers of revised drafts: "MEMENTO Pink Revisions - 9/7/99"
_RUNNING_HEADER = re.compile(
    r"\b(?:[Rr]evis(?:ed|ions?)|REVIS(?:ED|IONS?))\b.{0,30}\b[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}$"
)
_PARENTHETICAL = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_UNCLOSED = re.compile(r"[(\[][^()\[\]]*$")
_EXTENSION = r"V\.?\s?O\.?|O\.?\s?S\.?|O\.?\s?C\.?|CONT'?D\.?|CONT\.?|CONTINUED|CONTINUING"
# V.O., O.S., CONT'D ... left after a cue when the script wrote them without brackets
_CUE_EXTENSION = re.compile(rf"(?:\s+(?:{_EXTENSION}|OVER))+$")
# Cue extensions inside brackets are not stage directions; dropped from colon-layout text.
_EXTENSION_PAREN = re.compile(rf"^[(\[]\s*(?:{_EXTENSION}|OFF|OS|VO)\s*[)\]]$", re.IGNORECASE)
_ABBREVIATION_END = re.compile(r"\b(?:JR|SR|DR|MR|MRS|ST)\.$")
_LEADING_PAREN = re.compile(r"\s*(\([^()]*\)|\[[^\[\]]*\])\s*")
# "NAME : text", "NAME [grinning]: text", "NAME (V.O.) [to Bart]: text"
_COLON_CUE = re.compile(r"^([^\s:a-z\[\]][^:a-z\[\]]{0,60}?)\s*((?:[(\[][^()\[\]:]*[)\]]\s*)*):\s*(.*)$")


def _has_lower(text: str) -> bool:
    return any(char.islower() for char in text)


def normalize_cue(cue: str) -> str:
    """'Dr. Lecter (V.O.)' -> 'DR LECTER': upper case, no brackets, extensions, dots or accents."""
    name = _UNCLOSED.sub("", _PARENTHETICAL.sub(" ", cue)).upper()
    name = "".join(char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char))
    name = _CUE_EXTENSION.sub("", " ".join(name.split()))
    name = name.replace(".", " ")
    return " ".join(name.split()).strip(" -:,;*\"")


def is_heading(content: str) -> bool:
    return bool(_HEADING.match(content) or _PLACE_HEADING.match(content))


def is_transition(content: str) -> bool:
    return bool(_TRANSITION.match(content))


def _cue_name(content: str) -> str:
    """The speaker if `content` can be a character cue, else ''."""
    if "(" not in content and "[" not in content and _has_lower(content):
        return ""  # the common case, without the bracket removal below
    bare = _UNCLOSED.sub("", _PARENTHETICAL.sub(" ", content)).strip()
    if content.startswith(("(", "[")) or _has_lower(bare) or len(bare) > MAX_CUE_LENGTH:
        return ""
    name = normalize_cue(content)
    ends_sentence = _CUE_EXTENSION.sub("", bare).rstrip().endswith((".", ",")) and not _ABBREVIATION_END.search(bare)
    if (
        not name
        or not any(char.isalpha() for char in name)
        or not (name[0].isalnum() or name[0] == "'")
        or any(char in name for char in "!?;:")
        or ends_sentence  # "OKAY." is shouted dialogue, not a name
        or is_heading(content)
        or is_transition(content)
        or _CAMERA.search(name)
    ):
        return ""
    return name


def _heading_text(content: str) -> str:
    """'21 INT. MOTEL ROOM 304 - DAY 21' -> 'INT. MOTEL ROOM 304 - DAY'."""
    match = _LEADING_SCENE_NUMBER.match(content)
    if match and is_heading(content[match.end():]):
        number = re.escape(match.group(1))
        content = re.sub(rf"\s+(?:[Ss][Cc]\.?\s*)?{number}\.?$", "", content[match.end():])
    return " ".join(content.split())


# --- text to lines ----------------------------------------------------------------------


@dataclass
class _Line:
    indent: int
    content: str  # stripped; "" for a blank line
    trailing_space: bool = False  # the raw line ended in white space (how some scripts mark wrapped lines)


def _repair_utf8(match: re.Match) -> str:
    chars = match.group(0)
    try:
        return b"".join(
            char.encode("cp1252") if char in _CP1252_SPECIALS else char.encode("latin-1") for char in chars
        ).decode("utf-8")
    except UnicodeError:
        return chars


def _clean(text: str) -> str:
    """Line ends, HTML tags and entities, doubly encoded UTF-8 (twice: some are triple), controls."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n")
    text = html.unescape(_TAG.sub("", text))
    for _ in range(2):
        text = _MOJIBAKE.sub(_repair_utf8, text)
    return _CONTROL.sub("", text.replace("\xa0", " "))


def _resplit(raw_lines: list[str]) -> list[str]:
    """Split huge lines at runs of 6+ spaces; each piece keeps its run as indentation."""
    lines: list[str] = []
    for raw in raw_lines:
        if len(raw) >= RESPLIT_MIN_LINE:
            lines.extend(RESPLIT_GAP.sub(r"\n\1", raw).split("\n"))
        else:
            lines.append(raw)
    return lines


def _to_lines(text: str, resplit: bool) -> list[_Line]:
    raw_lines = _clean(text).split("\n")
    if resplit:
        raw_lines = _resplit(raw_lines)
    lines: list[_Line] = []
    for raw in raw_lines:
        expanded = _REVISION_MARK.sub("", raw.expandtabs(8).rstrip())
        content = expanded.strip()
        if content and (_PAGE_NOISE.match(content) or _RUNNING_HEADER.search(content)):
            continue  # page numbers, (MORE), CONTINUED: do not end a speech or a paragraph
        lines.append(_Line(len(expanded) - len(expanded.lstrip()), " ".join(content.split()), raw[-1:].isspace()))
    return lines


# --- layouts ----------------------------------------------------------------------------


def _next_content(lines: list[_Line], start: int, max_blanks: int) -> _Line | None:
    """The first non-blank line at or after `start`, if at most `max_blanks` blanks precede it."""
    for index in range(start, min(len(lines), start + max_blanks + 1)):
        if lines[index].content:
            return lines[index]
    return None


def _opens_speech(line: _Line | None) -> bool:
    return line is not None and not is_heading(line.content) and (
        _has_lower(line.content) or line.content.startswith(("(", "["))
    )


class _Builder:
    """Collects blocks into scenes; merges consecutive action lines into one paragraph. A
    transition (CUT TO:) closes its scene, so scripts without headings still get scenes."""

    def __init__(self):
        self.scenes: list[Scene] = []
        self.heading = ""
        self.blocks: list[Block] = []
        self.action: list[str] = []
        self.after_transition = False

    def flush_action(self) -> None:
        if self.action:
            self.blocks.append(Block("action", " ".join(self.action)))
            self.action = []

    def _start_content(self) -> None:
        if self.after_transition:
            self.new_scene("")

    def add_action_line(self, text: str) -> None:
        self._start_content()
        self.action.append(text)

    def add(self, block: Block) -> None:
        self.flush_action()
        self._start_content()
        if block.text:
            self.blocks.append(block)

    def add_transition(self, text: str) -> None:
        self.flush_action()
        self.blocks.append(Block("transition", text))
        self.after_transition = True

    def new_scene(self, heading: str) -> None:
        self.flush_action()
        if self.blocks or self.heading:
            self.scenes.append(Scene(self.heading, tuple(self.blocks)))
        self.heading, self.after_transition = heading, False
        self.blocks = [Block("heading", heading)] if heading else []

    def finish(self) -> list[Scene]:
        self.new_scene("")
        return self.scenes


@dataclass(frozen=True)
class _Script:
    """A script's lines and what the cued layouts read from the whole of it."""
    lines: list[_Line]
    max_blanks: int  # blank lines allowed between a cue and its speech
    names: list[str]  # per line, _cue_name of its text
    cues: dict[str, set[int]]  # speakers of cues on a line of their own -> indentations of those cues
    cue_indents: frozenset[int]  # all of those indentations
    blankless: bool  # no blank lines: speeches at the left edge end by trailing spaces (_ends_flush_speech)


def _leading_directions(text: str) -> tuple[list[str], str]:
    """'(quietly) [beat] We go.' -> (['(quietly)', '[beat]'], 'We go.')."""
    directions = []
    while match := _LEADING_PAREN.match(text):
        directions.append(match.group(1))
        text = text[match.end():]
    return directions, text.strip()


def _ends_flush_speech(last_spoken: _Line, line: _Line, wraps_marked: bool) -> bool:
    """Whether `line` ends a speech that starts at the left edge in a script with no blank lines.
    Such scripts mark hard-wrapped lines with a trailing space: when the speech's own first line
    has one (`wraps_marked`), the speech ends after a line without it; otherwise speech lines
    have none, and a line with one is the first of an action paragraph."""
    return not last_spoken.trailing_space if wraps_marked else line.trailing_space


def _speech(script: _Script, start: int, speaker: str, out: _Builder, opening: _Line | None = None) -> int:
    """Read the dialogue and parentheticals of one cue from lines[start:]; return the index after.
    Before the first spoken line, up to `max_blanks` blank lines are skipped (blank layout).
    `opening`: the speech's first line when it shares a line with its cue ("HOBBS Hey!")."""
    lines = script.lines
    spoken: list[str] = []
    margin = -1  # indentation of the first spoken line (not of a parenthetical right of the speech)
    first_spoken = last_spoken = None
    index = start
    pending = [opening] if opening else []
    while pending or index < len(lines):
        line = pending.pop() if pending else lines[index]
        text = line.content
        if line is not opening:
            if not text and not spoken and _opens_speech(_next_content(lines, index, script.max_blanks)):
                index += 1
                continue
            if not text or is_heading(text) or is_transition(text):
                break
            directed = text.startswith(("(", "["))
            if margin >= 0 and line.indent < margin - DEDENT_ENDS_DIALOGUE and not directed:
                break
            if script.blankless and spoken and not directed and line.indent <= margin <= FLUSH_LEFT and (
                _ends_flush_speech(last_spoken, line, first_spoken.trailing_space) or _inline_cue(line, script)[0]
            ):
                break
            if spoken and script.names[index] and _opens_speech(_next_content(lines, index + 1, 0)) and (
                line.indent != margin or _is_bare_name(text)
            ):
                break  # a new cue right under the speech
        said_after_direction = False
        if text.startswith(("(", "[")):
            closing = ")" if text.startswith("(") else "]"
            parts = [text]
            while closing not in parts[-1] and len(parts) < MAX_PARENTHETICAL_LINES:
                following = lines[index + 1] if index + 1 < len(lines) else None
                if following is None or not following.content:
                    break
                parts.append(following.content)
                index += 1
            directions, text = _leading_directions(" ".join(parts))
            # unclosed, or nothing said after it ("(beat) )", "(to Manny)   (X)" in the margin)
            if not directions or text.startswith(("(", "[")) or not any(char.isalnum() for char in text):
                directions, text = [" ".join(parts)], ""
            for direction in directions:
                out.add(Block("parenthetical", direction, speaker))
            said_after_direction = bool(text)
        if text:
            spoken.append(text)
            first_spoken, last_spoken = first_spoken or line, line
            # an indented script sets a parenthetical right of the speech; a flush-left one does not
            if margin < 0 and (not said_after_direction or line.indent <= FLUSH_LEFT):
                margin = line.indent
        if line is not opening:
            index += 1
    out.add(Block("dialogue", " ".join(spoken), speaker))
    return index


def _is_blankless(lines: list[_Line]) -> bool:
    """Whether the script has (nearly) no blank lines between its first and last text."""
    filled = [index for index, line in enumerate(lines) if line.content]
    if not filled:
        return False
    blanks = filled[-1] - filled[0] + 1 - len(filled)
    return blanks <= BLANKLESS_SHARE * len(filled)


def _is_bare_name(text: str) -> bool:
    """A cue written at the dialogue margin: no sentence punctuation at all."""
    return not any(char in text for char in ".!?,-")


def _script(lines: list[_Line], max_blanks: int) -> _Script:
    names = [_cue_name(line.content) if line.content else "" for line in lines]
    cues: dict[str, set[int]] = {}
    for index, name in enumerate(names):
        if name and _opens_speech(_next_content(lines, index + 1, max_blanks)):
            cues.setdefault(name, set()).add(lines[index].indent)
    indents = frozenset(indent for speaker_indents in cues.values() for indent in speaker_indents)
    return _Script(lines, max_blanks, names, cues, indents, _is_blankless(lines))


def _inline_cue(line: _Line, script: _Script) -> tuple[str, str]:
    """'HOBBS Hey!' -> ('HOBBS', 'Hey!'): a cue and its speech on one line, without a colon. Only
    a speaker known from cues of their own (`script.cues`), at the indentation of one of those, with two
    letters or more, counts, and the words after any leading "(direction)" must open with a
    capitalized word ("Hey", "I"), so that action such as 'HOBBS runs.', 'HOBBS Smiles.' at the
    action margin, 'HOBBS, 50s, waits.', 'ERIK HELLER's body' or 'A Christmas tree' stays action."""
    if line.indent not in script.cue_indents:
        return "", ""
    words = line.content.split(" ")
    found = ("", "")
    for count in range(1, min(len(words), MAX_INLINE_CUE_WORDS + 1)):
        head, rest = " ".join(words[:count]), " ".join(words[count:])
        if _has_lower(head):
            break
        name = _cue_name(head)
        said = _leading_directions(rest)[1].lstrip("\"'¿¡")
        capitalized = said[:1].isupper() and (said[1:2].islower() or said[1:2] in ("", " ", "'"))
        if capitalized and line.indent in script.cues.get(name, ()) and sum(char.isalpha() for char in name) >= 2:
            found = (name, rest)
    return found


def _parse_cued(lines: list[_Line], max_blanks: int) -> list[Scene]:
    out = _Builder()
    script = _script(lines, max_blanks)
    index = 0
    while index < len(lines):
        line = lines[index]
        text = line.content
        if not text:
            out.flush_action()
            index += 1
            continue
        if is_heading(text):
            out.new_scene(_heading_text(text))
            index += 1
            continue
        if is_transition(text):
            out.add_transition(text)
            index += 1
            continue
        speaker = script.names[index]
        if speaker and _opens_speech(_next_content(lines, index + 1, max_blanks)):
            index = _speech(script, index + 1, speaker, out)
            continue
        speaker, said = _inline_cue(line, script)
        if speaker:
            index = _speech(script, index + 1, speaker, out, _Line(line.indent, said, line.trailing_space))
            continue
        out.add_action_line(text)
        index += 1
    return out.finish()


def _parse_colon(lines: list[_Line]) -> list[Scene]:
    out = _Builder()
    index = 0
    while index < len(lines):
        text = lines[index].content
        if not text:
            out.flush_action()
        elif is_heading(text):
            out.new_scene(_heading_text(text))
        elif is_transition(text):
            out.add_transition(text)
        else:
            speaker, first = _colon_cue(text)
            if speaker:
                index = _colon_speech(lines, index + 1, speaker, first, out)
                continue
            out.add_action_line(text)
        index += 1
    return out.finish()


def _colon_cue(text: str) -> tuple[str, str]:
    """'MARGE [grinning]: Drive safe.' -> ('MARGE', '[grinning] Drive safe.'): brackets before the
    colon are read as those after it."""
    match = _COLON_CUE.match(text)
    if not match or len(match.group(1)) > MAX_CUE_LENGTH or is_heading(text) or is_transition(text):
        return "", ""
    speaker = normalize_cue(match.group(1))
    if not speaker or not any(char.isalpha() for char in speaker) or _CAMERA.search(speaker):
        return "", ""
    return speaker, f"{match.group(2).strip()} {match.group(3)}".strip()


def _colon_speech(lines: list[_Line], start: int, speaker: str, first: str, out: _Builder) -> int:
    """'NAME : (quietly) text' plus continuation lines up to a blank line or the next cue."""
    parts = [first]
    index = start
    while index < len(lines):
        text = lines[index].content
        if not text or is_heading(text) or is_transition(text) or _colon_cue(text)[0]:
            break
        parts.append(text)
        index += 1
    directions, speech = _leading_directions(" ".join(part for part in parts if part))
    for direction in directions:  # stage directions, or cue extensions to drop
        if not _EXTENSION_PAREN.match(direction):
            out.add(Block("parenthetical", direction, speaker))
    out.add(Block("dialogue", speech, speaker))
    return index


def detect_layout(text: str) -> str:
    """Guess a layout for a script with no parse_mode hint (e.g. a crawled page)."""
    raw_lines = _clean(text).split("\n")
    if any(len(raw) >= RESPLIT_MIN_LINE and len(RESPLIT_GAP.findall(raw)) >= 10 for raw in raw_lines):
        return "resplit+strict"
    lines = _to_lines(text, resplit=False)
    direct = after_blank = colon = 0
    for index, line in enumerate(lines):
        if not line.content:
            continue
        if _colon_cue(line.content)[0] and _has_lower(line.content):
            colon += 1
        if _cue_name(line.content):
            if _opens_speech(_next_content(lines, index + 1, 0)):
                direct += 1
            elif _opens_speech(_next_content(lines, index + 1, MAX_BLANKS_BEFORE_DIALOGUE)):
                after_blank += 1
    if colon >= 20 and colon > 2 * direct:
        return "colon"
    if after_blank >= 20 and after_blank > 3 * direct:
        return "blank"
    return "strict"


def parse_screenplay(text: str | bytes, layout: str = "auto") -> list[Scene]:
    """Raw screenplay text -> scenes of blocks. `layout` is one of LAYOUTS or a parse_mode
    such as 'resplit+strict'. Any text parses; only a non-text input or an unknown layout
    raises PipelineInputError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise PipelineInputError(f"screenplay text must be str or bytes, got {type(text).__name__}")
    modes = set(str(layout).split("+"))
    if not modes <= set(LAYOUTS):
        raise PipelineInputError(f"layout {layout!r} unknown; valid: {', '.join(LAYOUTS)} (joined by '+')")
    if modes == {"auto"}:
        modes = set(detect_layout(text).split("+"))
    lines = _to_lines(text, resplit="resplit" in modes)
    if "colon" in modes:
        return _parse_colon(lines)
    return _parse_cued(lines, MAX_BLANKS_BEFORE_DIALOGUE if "blank" in modes else 0)


def cue_counts(scenes: list[Scene]) -> Counter:
    """Dialogue blocks per speaker."""
    return Counter(block.speaker for scene in scenes for block in scene.blocks if block.kind == "dialogue")


# --- character matching ------------------------------------------------------------------

TITLES = frozenset(
    "THE DR DOCTOR MR MRS MS MISS MISTER CAPTAIN CAPT CPT LT LIEUTENANT SHERIFF DEPUTY AGENT DETECTIVE"
    " DET SGT SERGEANT CPL CORPORAL PVT PRIVATE PROFESSOR PROF GENERAL GEN COLONEL COL MAJOR SIR LORD"
    " LADY KING QUEEN PRINCE PRINCESS FATHER SISTER BROTHER OFFICER JUDGE COUNT UNCLE AUNT COMMANDER"
    " ADMIRAL REVEREND REV SENATOR PRESIDENT CHIEF COACH NURSE DEAN MAYOR MADAME MONSIEUR SIGNOR"
    " MASTER EMPEROR GOVERNOR SENOR SENORA".split()
)
SUFFIXES = frozenset("JR SR II III IV".split())
_QUOTED = re.compile(r"[\"'\u2018\u201c]([^\"'\u2019\u201d]+)[\"'\u2019\u201d]")


@dataclass(frozen=True)
class NameForms:
    exact: tuple[str, ...]  # full name, name without titles, nickname, title + last name
    partial: tuple[str, ...]  # first name, last name, nickname: the most frequent one counts


def name_forms(character: str) -> NameForms:
    """The cue spellings a CMU character name may take in a script."""
    nicknames = [normalize_cue(nick) for nick in _QUOTED.findall(character)]
    base = _QUOTED.sub(" ", character).split(" - ")[0]  # "James McCullen - 1641", "Ed Bloom - Young"
    tokens = [token for token in normalize_cue(base).split() if token not in SUFFIXES]
    titles: list[str] = []
    while tokens and tokens[0] in TITLES and len(tokens) > 1:
        titles.append(tokens.pop(0))
    core = " ".join(tokens)
    exact = [" ".join(titles + tokens), core, *nicknames]
    if titles and tokens:
        exact.append(f"{titles[-1]} {tokens[-1]}")
    partial = ([tokens[0], tokens[-1]] if tokens else []) + nicknames
    return NameForms(tuple(dict.fromkeys(f for f in exact if f)), tuple(dict.fromkeys(f for f in partial if f)))


def match_character(character: str, counts: Counter, aliases: list[str] | None = None) -> list[str]:
    """The cues of `counts` (dialogue blocks per cue of one script) that `character` speaks under.

    `aliases` (the hand-checked `matched_cue` of cmu_character_matches.tsv) wins when given,
    even when empty: an empty list means the script has no such character. Otherwise every
    exact form present counts, plus the single most frequent first name / last name / nickname."""
    if aliases is not None:
        return [cue for cue in dict.fromkeys(normalize_cue(alias) for alias in aliases) if counts.get(cue)]
    forms = name_forms(character)
    matched = [cue for cue in forms.exact if counts.get(cue)]
    partial = [cue for cue in forms.partial if counts.get(cue)]
    if partial:
        best = max(partial, key=lambda cue: (counts[cue], -partial.index(cue)))
        if best not in matched:
            matched.append(best)
    return matched
