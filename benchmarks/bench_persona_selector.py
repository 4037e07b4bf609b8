"""Grounded persona extractors on the Synthetic-Persona-Chat conversation split, and on ESConv seekers.

Fits models/persona_selector.py on all `train` examples of pess.files (params.yaml, split by
conversation with pess.split), tunes it on `val`, and scores on val and test (test read once):
the selector, the extractive rule (flows/lib/persona_extractive.py), the trivial reference
"every sentence the speaker said", and the ceiling of any selector over these candidates: the
candidates whose gold label is 1 (it reads the gold persona, so it is no extractor). Figures,
each with n examples and a 95% bootstrap interval (2000 resamples, seed 0): similarity P/R/F1
(MiniLM cosine, tau 0.7, as flows/lib/extractor_eval), exact-sentence P/R/F1 (normalised text equal to a gold sentence), sentences per speaker, and the
grounded share: output sentences with cosine >= tau to one of the speaker's own sentences. Then
personas of the first `--esconv` ESConv train seekers (speaker "usr"): the mean sentences per
seeker and `--show` of them. One thread (the machine is shared); MiniLM vectors are cached in
`--cache` so that a rerun encodes nothing.

    python benchmarks/bench_persona_selector.py [--cache PATH] [--no-clauses] [--hidden 128] [--val-only]
                                                [--esconv 100] [--show 5] [--out JSON]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SELECTOR_HIDDEN = 128  # models/persona_selector.py SelectorConfig.hidden


def example_counts(gold: list[list[str]], generated: list[list[str]], own: list[list[str]], scorer, tau: float
                   ) -> dict[str, np.ndarray]:
    """Per-example counts that the micro-averaged figures are sums of."""
    from models.pess import normalise_sentence, similarity_sets

    sets = [similarity_sets(m, tau) for m in scorer.matrices(list(zip(gold, generated)))]
    grounding = scorer.matrices(list(zip(own, generated)))  # [own sentences, generated]
    exact = [len({normalise_sentence(s) for s in g} & {normalise_sentence(s) for s in k})
             for g, k in zip(gold, generated)]
    return {
        "generated": np.array([len(k) for k in generated]),
        "gold": np.array([len(g) for g in gold]),
        "consistent": np.array([len(s.consistent) for s in sets]),
        "covered": np.array([len(g) - len(s.missing) for g, s in zip(gold, sets)]),
        "exact": np.array(exact),
        "grounded": np.array([int((m.max(axis=0) >= tau).sum()) if m.size else 0 for m in grounding]),
    }


def figures(counts: dict[str, np.ndarray]) -> dict[str, object]:
    from flows.lib.bootstrap import bootstrap

    def f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def statistic(rows: np.ndarray) -> dict[str, float]:
        total = {name: float(values[rows].sum()) for name, values in counts.items()}
        sim_p, sim_r = total["consistent"] / max(1, total["generated"]), total["covered"] / max(1, total["gold"])
        exact_p, exact_r = total["exact"] / max(1, total["generated"]), total["exact"] / max(1, total["gold"])
        return {
            "similarity_p": sim_p, "similarity_r": sim_r, "similarity_f1": f1(sim_p, sim_r),
            "exact_p": exact_p, "exact_r": exact_r, "exact_f1": f1(exact_p, exact_r),
            "sentences_mean": total["generated"] / len(rows),
            "grounded_share": total["grounded"] / max(1, total["generated"]),
        }

    return bootstrap(statistic, len(counts["gold"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="/tmp/persona_selector_minilm.parquet", help="MiniLM vector cache")
    parser.add_argument("--no-clauses", action="store_true", help="whole sentences only as candidates")
    parser.add_argument("--hidden", type=int, default=SELECTOR_HIDDEN, help="MLP width; 0: logistic regression")
    parser.add_argument("--val-only", action="store_true", help="leave test unread (choosing between variants)")
    parser.add_argument("--esconv", type=int, default=100, help="ESConv train seekers to extract personas of (0: none)")
    parser.add_argument("--show", type=int, default=5)
    parser.add_argument("--out", default="", help="write every figure here as JSON")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from flows.lib.config import load_params
    from flows.lib.embedding_cache import cached_vectors, embed_with_cache
    from flows.lib.esconv_examples import load_split, load_strategies, seeker_utterances
    from flows.lib.persona_data import load_persona_examples
    from flows.lib.persona_extractive import ExtractiveExtractor, own_sentences
    from flows.lib.pess_params import corpus_settings, esconv_dir
    from models.pess import SentenceScorer, persona_sentences
    from models.persona_selector import SelectorConfig, fit_selector, grounded_candidates

    class CachedScorer(SentenceScorer):
        def embed(self, sentences: list[str]) -> np.ndarray:
            if not sentences:
                return super().embed(sentences)
            embed_with_cache(sentences, args.cache, config.sentence_model, super().embed)
            return cached_vectors(sentences, args.cache, config.sentence_model)

    params = load_params(ROOT / "params.yaml")
    config = SelectorConfig(clauses=not args.no_clauses, hidden=args.hidden)
    examples = load_persona_examples(**corpus_settings(params))
    split = {name: [e for e in examples if e.split == name] for name in ("train", "val", "test")}
    scorer = CachedScorer(config.sentence_model)

    started = time.perf_counter()
    selector = fit_selector(split["train"], split["val"], scorer, config)
    fit_seconds = time.perf_counter() - started
    results: dict[str, object] = {
        "config": {"clauses": config.clauses, "hidden": config.hidden, "tau": config.tau},
        "split_sizes": {name: len(rows) for name, rows in split.items()},
        "fit_seconds": round(fit_seconds, 1),
        "choice": asdict(selector.choice),
    }
    print(json.dumps(results), flush=True)

    extractors = {
        "all_sentences": lambda lists: [own_sentences(u) for u in lists],
        "extractive": ExtractiveExtractor().extract,
        "selector": selector.extract,
    }
    for name in ("val",) if args.val_only else ("val", "test"):
        gold = [persona_sentences(e.persona) for e in split[name]]
        own = [own_sentences(e.own_turns) for e in split[name]]
        lists = [list(e.own_turns) for e in split[name]]
        said = grounded_candidates(lists, scorer, config)
        # not an extractor: the candidates a perfect selector would keep (it reads the gold persona)
        ceiling = [[t for t, best in zip(texts, m.max(axis=0) if m.size else []) if best >= config.tau]
                   for texts, m in zip(said, scorer.matrices(list(zip(gold, said))))]
        for extractor, extract in {**extractors, "ceiling_gold_labels": lambda _: ceiling}.items():
            counts = example_counts(gold, extract(lists), own, scorer, config.tau)
            results[f"{name}/{extractor}"] = figures(counts)
            print(name, extractor, json.dumps(results[f"{name}/{extractor}"]), flush=True)

    esconv = esconv_dir(params)
    if args.esconv < 1:  # load_split reads every conversation at limit 0
        conversations = []
    else:
        conversations = load_split(esconv, "train", load_strategies(esconv / "strategy.json"), limit=args.esconv)
    seekers = [seeker_utterances(c) for c in conversations]
    for extractor in ("extractive", "selector") if seekers else ():
        personas = extractors[extractor](seekers)
        results[f"esconv/{extractor}"] = {
            "seekers": len(seekers),
            "sentences_mean": round(float(np.mean([len(p) for p in personas])), 2),
            "empty": sum(not p for p in personas),
            "examples": {c.conversation_id: p for c, p in list(zip(conversations, personas))[:args.show]},
        }
        print("esconv", extractor, json.dumps(results[f"esconv/{extractor}"], indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
