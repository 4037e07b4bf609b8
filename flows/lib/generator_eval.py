"""Scores of the PESS-GEN variants and their references on ESConv supporter turns, and the
samples report.

Every system is scored on the same examples (all supporter turns of the test conversations
unless gen.eval limits them), each figure with a 95% bootstrap interval over examples:

- strategy_acc (%): the argmax over the 8 strategy logits at the first decoding step against
  the gold strategy, on every example (null for an oracle variant, whose strategy is given);
- ppl: exp of the token-mean NLL of the gold response tokens (end included) given the gold
  strategy, averaged over all tokens as PAL averages; PAL's tokens also include the strategy
  token, and its BPE tokenizer differs;
- persona_nll_gain: the mean NLL per response token under another example's persona (the one
  half the list away) minus under the example's own, nats per token: above 0 when the model
  uses the persona; 0 for the no-persona variant;
- response metrics, on the decoded examples (`decoded_rows`): ours (sacreBLEU-1/2/4 lower-cased,
  ROUGE-L F1 of rouge-score, distinct-1/2: flows/lib/text_metrics.py) and PAL's definitions
  (`pal` block: flows/lib/pal_metrics.py).

References go through the generator's tokenizer round trip (lower case and accent stripping for
the uncased MiniLM vocabulary) before any comparison, for every system alike.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from flows.lib.bootstrap import bootstrap
from flows.lib.config import file_sha256, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample
from flows.lib.pal_metrics import pal_scores_with_intervals
from flows.lib.text_metrics import bleu, distinct, rouge
from models.generator import Decoding, ResponseGenerator
from models.pess import rotated_by_half
from models.runtime import seed_everything


def other_personas(examples: Sequence[SupportExample]) -> list[SupportExample]:
    """The examples with each persona taken from the example half the list away: mostly
    another conversation's seeker, so a persona-reading model should find the gold response
    less likely."""
    return [replace(e, persona=persona) for e, persona in zip(examples, rotated_by_half([e.persona for e in examples]))]


def decoded_rows(n_examples: int, limit: int) -> list[int]:
    """The rows whose responses are decoded: all (limit 0), else `limit` rows evenly spaced over
    the whole split, so that every part of the test conversations is represented."""
    if limit <= 0 or limit >= n_examples:
        return list(range(n_examples))
    return sorted({int(x) for x in np.linspace(0, n_examples - 1, limit)})


def strategy_scores(gold: Sequence[str], predicted: Sequence[str | None], n_resamples: int, seed: int) -> dict[str, Any]:
    """strategy_acc (%) with its interval over the examples."""
    hits = np.array([p == g for p, g in zip(predicted, gold)], dtype=float)
    scored = bootstrap(lambda rows: {"strategy_acc": 100 * hits[rows].mean()}, len(hits), n_resamples, seed, digits=2)
    return {k: v for k, v in scored.items() if k != "n"}


def likelihood_scores(nll: Sequence[float], other_nll: Sequence[float], tokens: Sequence[int],
                      n_resamples: int, seed: int) -> dict[str, Any]:
    """ppl, ppl_other_persona and persona_nll_gain (token-weighted, with intervals)."""
    own, other, count = np.asarray(nll), np.asarray(other_nll), np.asarray(tokens, dtype=float)

    def figures(rows: np.ndarray) -> dict[str, float]:
        total = count[rows].sum()
        return {"ppl": math.exp(own[rows].sum() / total), "ppl_other_persona": math.exp(other[rows].sum() / total),
                "persona_nll_gain": (other[rows].sum() - own[rows].sum()) / total}

    scored = bootstrap(figures, len(own), n_resamples, seed)
    return {k: v for k, v in scored.items() if k != "n"}


def response_scores(hypotheses: Sequence[str], references: Sequence[str], n_resamples: int, seed: int) -> dict[str, Any]:
    """Our response metrics (%) and PAL's (block `pal`), on the decoded examples."""
    hypotheses, references = list(hypotheses), list(references)
    ours = {
        **{f"bleu_{n}": bleu(hypotheses, references, lowercase=True, max_order=n) for n in (1, 2, 4)},
        "rouge_l": 100 * rouge(hypotheses, references)["rougeL"],
        "dist_1": 100 * distinct(hypotheses, 1),
        "dist_2": 100 * distinct(hypotheses, 2),
        "mean_words": sum(len(h.split()) for h in hypotheses) / max(1, len(hypotheses)),
    }
    return {"decoded": len(hypotheses), **{k: round(v, 4) for k, v in ours.items()},
            "pal": pal_scores_with_intervals(hypotheses, references, n_resamples, seed)}


def system_scores(outputs: Sequence[dict[str, Any]], n_resamples: int, seed: int) -> dict[str, Any]:
    """The metrics of one system from its per-example outputs: {gold_strategy, strategy,
    [nll, other_nll, tokens], [response, gold]} (the bracketed keys when the system has them)."""
    if not outputs:
        raise PipelineInputError("gen_eval: no test examples (check gen.conversations.test and gen.eval)")
    metrics: dict[str, Any] = {"examples": len(outputs)}
    if outputs[0].get("strategy", "") is not None:
        metrics.update(strategy_scores([o["gold_strategy"] for o in outputs], [o["strategy"] for o in outputs],
                                       n_resamples, seed))
    else:
        metrics["strategy_acc"] = None
    if "nll" in outputs[0]:
        metrics.update(likelihood_scores([o["nll"] for o in outputs], [o["other_nll"] for o in outputs],
                                         [o["tokens"] for o in outputs], n_resamples, seed))
    decoded = [o for o in outputs if o.get("response") is not None]
    if decoded:
        metrics.update(response_scores([o["response"] for o in decoded], [o["gold"] for o in decoded], n_resamples, seed))
    return metrics


def length_ordered_scores(generator: ResponseGenerator, examples: Sequence[SupportExample],
                          batch_size: int) -> tuple[list[float], list[int], list[str]]:
    """`generator.score` of every example, in input order, computed in batches of similar source
    length: with the split's order, a sixth of each batch's encoder work is padding. The length
    is counted in characters, so that no example is tokenized twice; the scores do not depend on
    the order."""
    order = sorted(range(len(examples)), key=lambda n: sum(map(len, examples[n].persona))
                   + sum(len(turn.text) for turn in examples[n].context))
    nll, tokens, strategy = [0.0] * len(examples), [0] * len(examples), [""] * len(examples)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        for n, *scores in zip(chunk, *generator.score([examples[n] for n in chunk])):
            nll[n], tokens[n], strategy[n] = scores
    return nll, tokens, strategy


def generator_outputs(generator: ResponseGenerator, examples: Sequence[SupportExample], decode: set[int],
                      decoding: Decoding, forced: Sequence[str] | None, batch_size: int) -> list[dict[str, Any]]:
    """Per example: the predicted strategy and the NLL of the gold response under the example's
    persona and under another's (one teacher-forced pass each), and for the rows in `decode` the
    decoded response. With `forced` strategies (one per example: the gold one for an oracle, a
    planner's) the responses take them, and there is neither a prediction nor a likelihood pass
    (the model and likelihoods are its persona variant's). The decoded rows are spread over the
    split, so they are decoded in batches of their own: one row at a time would leave most of
    each decoding step's matrix work idle."""
    scored: dict[str, list[Any]] = {"strategy": [None] * len(examples)}  # a forced strategy is given, not predicted
    if forced is None:
        nll, tokens, predicted = length_ordered_scores(generator, examples, batch_size)
        swapped = other_personas(examples)  # equal to examples without personas: nothing to swap
        other_nll = nll if swapped == list(examples) else length_ordered_scores(generator, swapped, batch_size)[0]
        scored = {"nll": nll, "other_nll": other_nll, "tokens": tokens, "strategy": predicted}
    rows, responses = sorted(decode), {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        chosen = [examples[n] for n in chunk]
        _, texts = generator.respond(chosen, decoding, None if forced is None else [forced[n] for n in chunk])
        responses.update((n, t[0]) for n, t in zip(chunk, texts))
    return [{
        "conversation_id": example.conversation_id, "turn_index": example.turn_index,
        "gold_strategy": example.strategy, **{key: values[n] for key, values in scored.items()},
        "response": responses.get(n), "gold": generator.as_decoded(example.response) if n in decode else None,
    } for n, example in enumerate(examples)]


def sample_rows(examples: Sequence[SupportExample], count: int, persona_every: int) -> list[int]:
    """The rows of `count` examples spread evenly over those late enough to have a persona."""
    eligible = [n for n, e in enumerate(examples) if e.seeker_turns >= persona_every] or list(range(len(examples)))
    step = max(1, len(eligible) // max(1, count))
    return eligible[::step][:count]


def kept_result(kept_path: str | Path, key_parts: list[Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """compute()'s result, kept in kept_path under a key of key_parts: a rerun with the same
    model, examples and settings reads it back instead of decoding again."""
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True, default=str).encode()).hexdigest()
    kept_path = Path(kept_path)
    if kept_path.exists():
        kept = json.loads(kept_path.read_text())
        if kept.get("key") == key:
            return kept
    result = {"key": key, **compute()}
    write_json(result, kept_path)
    return result


def evaluate_variant(
    model_path: str | Path,
    examples: Sequence[SupportExample],
    forced: Sequence[str] | None,
    decoding: Decoding,
    decode_limit: int,
    sample_decoding: Decoding,
    sample_contexts: int,
    persona_every: int,
    batch_size: int,
    seed: int,
    n_resamples: int,
    kept_path: str | Path,
) -> dict[str, Any]:
    """{key, model, metrics, samples, outputs} of one variant on `examples`, decoding with its own
    strategy or the `forced` one of each example (`generator_outputs`): outputs per example
    (enough for a strategy confusion matrix), metrics with intervals, and `sample_decoding`
    responses for `sample_contexts` examples (reports/gen_samples.md)."""

    def compute() -> dict[str, Any]:
        generator = ResponseGenerator.load(model_path)
        seed_everything(seed)
        outputs = generator_outputs(generator, examples, set(decoded_rows(len(examples), decode_limit)), decoding, forced,
                                    batch_size)
        rows = sample_rows(examples, sample_contexts, persona_every)
        chosen = [examples[n] for n in rows]
        strategies, responses = generator.respond(chosen, sample_decoding, None if forced is None else [forced[n] for n in rows])
        samples = [{"example": asdict(e), "strategy": s, "responses": r, "gold": generator.as_decoded(e.response)}
                   for e, s, r in zip(chosen, strategies, responses)]
        return {"model": str(model_path), "metrics": system_scores(outputs, n_resamples, seed), "samples": samples,
                "outputs": outputs}

    return kept_result(kept_path, [file_sha256(model_path), [asdict(e) for e in examples], forced, asdict(decoding),
                                   decode_limit, asdict(sample_decoding), sample_contexts, persona_every, seed, n_resamples],
                       compute)


def samples_markdown(results: dict[str, dict[str, Any]], decoding: Decoding) -> str:
    """reports/gen_samples.md: per sampled context, its turns, the gold response and every
    variant's persona and sampled responses (results: variant -> evaluate_variant's)."""
    contexts: dict[tuple[str, int], dict[str, Any]] = {}
    for variant, result in results.items():
        for sample in result["samples"]:
            example = sample["example"]
            context = contexts.setdefault((example["conversation_id"], example["turn_index"]), {
                "conversation_id": example["conversation_id"], "turn_index": example["turn_index"],
                "context": example["context"], "gold_strategy": example["strategy"], "gold": sample["gold"], "variants": {}})
            context["variants"][variant] = {"persona": example["persona"], "strategy": sample["strategy"], "responses": sample["responses"]}
    lines = [
        "# PESS-GEN samples",
        "",
        f"{decoding.num_return_sequences} nucleus samples per variant (top-p {decoding.top_p}, top-k {decoding.top_k}, "
        f"temperature {decoding.temperature}); the strategy is the model's argmax (the gold one for an oracle variant).",
        "",
    ]
    for n, context in enumerate(contexts.values(), start=1):
        lines += [f"## Context {n}: `{context['conversation_id']}`, supporter turn {context['turn_index']}", ""]
        lines += [f"> **{t['speaker']}** {t['strategy']} {t['text']}".replace("  ", " ") for t in context["context"]]
        lines += ["", f"Gold: **{context['gold_strategy']}** {context['gold']}", ""]
        for variant, result in context["variants"].items():
            persona = "; ".join(result["persona"]) if result["persona"] else "(none)"
            lines += [f"### {variant}", "", f"Persona: {persona}", ""]
            lines += [f"{k}. **{result['strategy']}** {text}" for k, text in enumerate(result["responses"], start=1)]
            lines.append("")
    return "\n".join(lines)


DIFFERENCES_FROM_PAL = (
    "Same as PAL: the metric definitions (flows/lib/pal_metrics.py; NLTK tokens without the punkt model, which is not "
    "installed offline), sampling with top-k 10, top-p 0.9, temperature 0.5, repetition penalty 1.03. Different: "
    "ESConv's released 910/195/195 split (PAL shuffles its own 70/20/10 split with seed 13), a MiniLM bert2bert backbone "
    "with an uncased WordPiece vocabulary (PAL: BlenderBot-small, cased BPE; references are lower-cased like outputs), "
    "a context of the last gen.context_turns turns cut to gen.model.max_source_len tokens (PAL: 512), perplexity over the "
    "response tokens without the strategy token, and no strategy-contrastive decoding.")


def reference_outputs(rows: Sequence[dict[str, Any]], decoded: set[int], normalise: Callable[[str], str]
                      ) -> dict[str, list[dict[str, Any]]]:
    """gen_references' per-example rows as per-system outputs for system_scores: strategy
    references, and the retrieval reply with its response on the decoded rows (normalised like
    the generators' outputs)."""
    systems = {name: [{"gold_strategy": r["gold"], "strategy": r[name]} for r in rows]
               for name in ("majority", "prior", "classifier")}
    systems["retrieval"] = [
        {"gold_strategy": r["gold"], "strategy": r["retrieval"],
         **({"response": normalise(r["retrieval_response"]), "gold": normalise(r["gold_response"])} if n in decoded else {})}
        for n, r in enumerate(rows)]
    return systems


def evaluation_table(variants: dict[str, dict[str, Any]], references: dict[str, list[dict[str, Any]]],
                     keys: Sequence[tuple[str, int]], decoded: int, n_resamples: int, seed: int) -> dict[str, Any]:
    """metrics/gen_eval.json: every system's metrics and, per example, its predicted strategy
    (a confusion matrix per system). `variants`: evaluate_variant results; `keys`: the
    (conversation_id, turn_index) of every example, in order, which every system must follow;
    `decoded`: how many of them have decoded responses (`decoded_rows`)."""
    for name, result in variants.items():
        if [(o["conversation_id"], o["turn_index"]) for o in result["outputs"]] != list(keys):
            raise PipelineInputError(f"gen_eval: variant {name} was scored on other examples; rerun gen_eval")
    outputs = {**references, **{name: result["outputs"] for name, result in variants.items()}}
    if any(len(rows) != len(keys) for rows in outputs.values()):
        raise PipelineInputError("gen_eval: the references were predicted on other examples; rerun gen_references")
    first = next(iter(outputs.values()))
    strategies = sorted({o["gold_strategy"] for o in first} | {o["strategy"] for rows in outputs.values() for o in rows} - {None})
    index = {strategy: n for n, strategy in enumerate(strategies)}
    return {
        "examples": len(keys),
        "decoded": decoded,
        "differences_from_pal": DIFFERENCES_FROM_PAL,
        "systems": {name: system_scores(rows, n_resamples, seed) for name, rows in outputs.items()},
        "predictions": {  # strategies as indices into `strategies`, one per example, in `conversation_id` order
            "strategies": strategies,
            "conversation_id": [k[0] for k in keys], "turn_index": [k[1] for k in keys],
            "gold": [index[o["gold_strategy"]] for o in first],
            "systems": {name: [index[o["strategy"]] for o in rows] for name, rows in outputs.items()
                        if rows[0]["strategy"] is not None},
        },
    }


def evaluation_with_references(variants: dict[str, dict[str, Any]], reference_rows: Sequence[dict[str, Any]],
                               normalise: Callable[[str], str], decode_limit: int, n_resamples: int, seed: int
                               ) -> dict[str, Any]:
    """`evaluation_table` of the variants beside the references of gen_references' rows (which
    fix the turns and their order), on the rows that `decoded_rows` picks."""
    decoded = set(decoded_rows(len(reference_rows), decode_limit))
    keys = [(r["conversation_id"], r["turn_index"]) for r in reference_rows]
    return evaluation_table(variants, reference_outputs(reference_rows, decoded, normalise), keys, len(decoded),
                            n_resamples, seed)
