"""Stage `pess_split`: the splits of the PESS corpus, with personas held out of training.

Reads the corpus of `pess.corpus` and assigns every speaker to train, val, test_seen (the random
conversation split: its personas recur in training), test_unseen (no persona sentence, nor a
MiniLM paraphrase of one at pess.split.tau, occurs in training) or dropped (training speakers
that would leak a held-out persona): flows/lib/persona_splits.py. Writes the assignment to
paths.pess_splits and the split sizes with the leakage check (measured on the result) to
paths.pess_split_metrics.
"""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
from prefect import flow

from flows.lib.config import load_params, out_path, param, write_json
from flows.lib.orchestration import task_of
from flows.lib.persona_data import load_persona_examples
from flows.lib.persona_metrics import CachedScorer
from flows.lib.persona_splits import leakage_report, persona_splits
from flows.lib.pess_params import corpus_settings
from flows.lib.schemas import PERSONA_SPLITS, write_table


@flow(name="pess_split")
def pess_split_flow() -> dict:
    params = load_params()
    examples = load_persona_examples(**corpus_settings(params))
    scorer = CachedScorer(param(params, "embed.model", str))
    tau = float(param(params, "pess.split.tau", (int, float)))
    splits = task_of(persona_splits)(examples, scorer, tau, param(params, "pess.split.seed", int),
                                     float(param(params, "pess.split.val", (int, float))),
                                     float(param(params, "pess.split.test", (int, float))))
    rows = [{"example_id": e.example_id, "conversation_id": e.conversation_id, "split": splits[e.example_id]} for e in examples]
    write_table(pa.Table.from_pylist(rows, schema=PERSONA_SPLITS), out_path(params, "pess_splits"), PERSONA_SPLITS)
    summary = {"tau": tau, "sizes": dict(sorted(Counter(splits.values()).items())),
               "leakage": task_of(leakage_report)(splits, examples, scorer, tau)}
    write_json(summary, out_path(params, "pess_split_metrics"))
    return summary


if __name__ == "__main__":
    pess_split_flow()
