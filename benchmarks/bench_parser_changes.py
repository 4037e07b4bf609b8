"""What a parser change does to the bundled data: every bundled screenplay and TVTropes page parsed
by the parsers of an earlier commit and by the working tree's, block by block.

    .venv/bin/python benchmarks/bench_parser_changes.py [--before d0f648e] [--append]

Screenplays (shared/data/imsdb_scripts, each with its parse_mode): blocks per kind before and
after; dialogue blocks (speaker, text) aligned in order, counted as unchanged, changed (same
place, other speaker or text), added or removed; the dialogue blocks of the matched CMU
characters (hand-checked cues of cmu_character_matches.tsv, as ingest_screenplays reads them)
and how many of those rows agree with the table's n_lines within 10% or 2 blocks.
Also the CPU time of one parse of all scripts by each. Pages (shared/data/html/tvtropes):
descriptions changed. With --append, the figures go to
benchmarks/RESULTS.md as a new section."""
from __future__ import annotations

import argparse
import csv
import datetime
import difflib
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

from flows import PROJECT_ROOT
from crawlers import tvtropes
from crawlers.pages import page_text
from flows.lib import screenplay
from flows.lib.errors import PipelineInputError

SHARED = PROJECT_ROOT.parent / "shared" / "data"
SCRIPTS = SHARED / "imsdb_scripts"
PAGES = SHARED / "html" / "tvtropes"
RESULTS = PROJECT_ROOT / "benchmarks" / "RESULTS.md"


def module_at(revision: str, path: str, folder: Path) -> ModuleType:
    """The module at `path` as committed in `revision`, imported under a name of its own."""
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=PROJECT_ROOT, check=True,
                            capture_output=True, text=True).stdout
    file = folder / f"before_{Path(path).stem}.py"
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dialogue(scenes) -> list[tuple[str, str]]:
    return [(block.speaker, block.text) for scene in scenes for block in scene.blocks if block.kind == "dialogue"]


def kinds(scenes) -> Counter:
    return Counter(block.kind for scene in scenes for block in scene.blocks)


def align(before: list, after: list) -> Counter:
    """Unchanged / changed / added / removed, from the in-order alignment of two block lists."""
    counts = Counter()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            counts["unchanged"] += i2 - i1
        else:
            paired = min(i2 - i1, j2 - j1)
            counts["changed"] += paired
            counts["removed"] += i2 - i1 - paired
            counts["added"] += j2 - j1 - paired
    return counts


def read_tsv(name: str) -> list[dict[str, str]]:
    with open(SCRIPTS / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def compare_screenplays(old: ModuleType) -> tuple[list[str], list[str]]:
    modes = {row["script_file"]: row["parse_mode"] for row in read_tsv("movie_script_map.tsv")}
    rows = [row for row in read_tsv("cmu_character_matches.tsv") if row["script_file"]]
    totals = {"before": Counter(), "after": Counter()}
    alignment, scripts_changed, examples = Counter(), [], []
    matched = {"before": [0, 0], "after": [0, 0]}  # dialogue blocks of matched characters, rows agreeing
    seconds = Counter()  # CPU seconds of parsing
    for file, mode in sorted(modes.items()):
        text = (SCRIPTS / file).read_text(encoding="utf-8", errors="replace")
        parsed = {}
        for side, module in (("before", old), ("after", screenplay)):
            start = time.process_time()
            parsed[side] = module.parse_screenplay(text, mode)
            seconds[side] += time.process_time() - start
        for side, scenes in parsed.items():
            totals[side] += kinds(scenes)
            counts = screenplay.cue_counts(scenes)
            for row in (row for row in rows if row["script_file"] == file):
                cues = [cue for cue in row["matched_cue"].split("|") if cue]
                found = sum(counts[cue] for cue in screenplay.match_character(row["character"], counts, cues))
                expected = int(row["n_lines"])
                matched[side][0] += found
                matched[side][1] += abs(found - expected) <= max(2, 0.1 * expected)
        before, after = dialogue(parsed["before"]), dialogue(parsed["after"])
        counts = align(before, after)
        alignment += counts
        if counts["changed"] or counts["added"] or counts["removed"]:
            scripts_changed.append(f"{Path(file).stem} ({mode}): {counts['changed']} changed, "
                                   f"{counts['added']} added, {counts['removed']} removed")
            if len(examples) < 6:
                examples.append(first_difference(Path(file).stem, before, after))
    kind_lines = [f"{kind}: {totals['before'][kind]} -> {totals['after'][kind]}" for kind in screenplay.BLOCK_KINDS]
    summary = [
        f"screenplays: {len(modes)} scripts, {len(scripts_changed)} with changed dialogue blocks",
        "blocks per kind, before -> after: " + "; ".join(kind_lines),
        f"dialogue blocks aligned in order: {alignment['unchanged']} unchanged, {alignment['changed']} changed, "
        f"{alignment['added']} added, {alignment['removed']} removed",
        f"matched CMU characters ({len(rows)} rows with a script): {matched['before'][0]} -> {matched['after'][0]} "
        f"dialogue blocks; rows agreeing with n_lines (10% or 2): {matched['before'][1]} -> {matched['after'][1]}",
        f"parsing all scripts once: {seconds['before']:.1f} -> {seconds['after']:.1f} CPU seconds",
    ]
    return summary, scripts_changed + examples


def first_difference(name: str, before: list, after: list) -> str:
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag != "equal":
            return f"e.g. {name}: {before[i1:i2][:2]} -> {after[j1:j2][:2]}"[:600]
    return ""


def description(parser, html: str, url: str) -> str:
    try:
        return parser(html, url).description
    except PipelineInputError as error:
        return f"<error: {error}>"


def compare_pages(old: ModuleType) -> list[str]:
    pages = sorted(PAGES.glob("*.html"))
    changed = []
    for path in pages:
        html = page_text(path.read_bytes(), "cp1252", str(path))  # what Scrapy makes of iso-8859-1
        if description(old.parse_trope_page, html, str(path)) != description(tvtropes.parse_trope_page, html, str(path)):
            changed.append(path.name)
    return [f"TVTropes pages: {len(pages)} bundled, {len(changed)} descriptions changed"
            + (f" ({', '.join(changed)})" if changed else "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d0f648e", help="the commit whose parsers are the baseline")
    parser.add_argument("--append", action="store_true", help="add a section to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old_screenplay = module_at(args.before, "flows/lib/screenplay.py", Path(folder))
        old_tvtropes = module_at(args.before, "crawlers/tvtropes.py", Path(folder))
    summary, details = compare_screenplays(old_screenplay)
    summary += compare_pages(old_tvtropes)
    print("\n".join(summary + [""] + details))
    if args.append:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        machine = f"{os.cpu_count()}-core {platform.machine()} CPU, {memory:.0f} GiB, Python {platform.python_version()}"
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True).stdout.strip()
        command = ".venv/bin/python benchmarks/bench_parser_changes.py " + " ".join(sys.argv[1:])
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(
                f"\n## Parser changes of issue 18 on the bundled data ({args.before} -> working tree at {head})\n\n"
                f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC | {machine}, shared with other "
                f"jobs | `{command.strip()}`\n\n" + "".join(f"- {line}\n" for line in summary)
                + "\nScripts whose dialogue blocks changed:\n\n" + "".join(f"- {line}\n" for line in details)
            )


if __name__ == "__main__":
    main()
