"""Scores of a PESS-GEN variant on ESConv supporter turns, and the samples report.

Metrics, all in percent except perplexity:

- strategy_acc: argmax over the 8 strategy logits at the first step vs the gold strategy
  (null for an oracle variant, whose strategy is given);
- ppl: exp of the mean NLL of the gold response tokens (end included) given the gold strategy;
  PAL's PPL also counts the strategy token, and its BPE differs: not comparable;
- ppl_other_persona, persona_nll_gain: the same with every example's persona taken from
  another example (`other_personas`), and the mean NLL difference (other - own, nats per
  token): above 0 when the model uses the persona; 0 for the no-persona variant;
- bleu_1/2/4: corpus sacreBLEU with max n-gram order 1/2/4, lower-cased;
- rouge_l, dist_1, dist_2, minilm_embedding_f1 (flows/lib/text_metrics.py; not BERTScore);
- mean_words: response length in words.

References go through the same tokenizer round trip as outputs (lower case and accent
stripping for the uncased MiniLM vocabulary).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

from flows.lib.config import file_sha256, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample
from flows.lib.text_metrics import bleu, distinct, minilm_embedding_f1, rouge
from models.generator import Decoding, ResponseGenerator
from models.pess import rotated_by_half
from models.runtime import seed_everything


def other_personas(examples: Sequence[SupportExample]) -> list[SupportExample]:
    """The examples with each persona taken from the example half the list away: mostly
    another conversation's seeker, so a persona-reading model should find the gold response
    less likely."""
    return [replace(e, persona=persona) for e, persona in zip(examples, rotated_by_half([e.persona for e in examples]))]


def evaluate_examples(
    generator: ResponseGenerator,
    examples: Sequence[SupportExample],
    decoding: Decoding,
    oracle: bool,
    batch_size: int,
    sentence_model,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The metrics of one variant and its outputs (strategy, response, gold) per example."""
    if not examples:
        raise PipelineInputError("gen_eval: no test examples (check gen.conversations.test and gen.eval.max_examples)")
    nll, other_nll, tokens, outputs = 0.0, 0.0, 0, []
    swapped = other_personas(examples)
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        batch_nll, batch_tokens = generator.response_nll(batch)
        nll, tokens = nll + batch_nll, tokens + batch_tokens
        other = swapped[start : start + batch_size]
        other_nll += batch_nll if other == batch else generator.response_nll(other)[0]  # no persona: nothing swapped
        strategies, responses = generator.respond(batch, decoding, [e.strategy for e in batch] if oracle else None)
        outputs += [{"strategy": s, "response": r[0], "gold_strategy": e.strategy, "gold": generator.as_decoded(e.response)}
                    for e, s, r in zip(batch, strategies, responses)]
    hypotheses, references = [o["response"] for o in outputs], [o["gold"] for o in outputs]
    metrics = {
        "examples": len(examples),
        "strategy_acc": None if oracle else 100 * sum(o["strategy"] == o["gold_strategy"] for o in outputs) / len(outputs),
        "ppl": math.exp(nll / tokens),
        "ppl_other_persona": math.exp(other_nll / tokens),
        "persona_nll_gain": (other_nll - nll) / tokens,
        **{f"bleu_{n}": bleu(hypotheses, references, lowercase=True, max_order=n) for n in (1, 2, 4)},
        "rouge_l": 100 * rouge(hypotheses, references)["rougeL"],
        "dist_1": 100 * distinct(hypotheses, 1),
        "dist_2": 100 * distinct(hypotheses, 2),
        "minilm_embedding_f1": 100 * minilm_embedding_f1(hypotheses, references, sentence_model)["minilm_embedding_f1"],
        "mean_words": sum(len(h.split()) for h in hypotheses) / len(hypotheses),
    }
    return metrics, outputs


def sample_examples(examples: Sequence[SupportExample], count: int, persona_every: int) -> list[SupportExample]:
    """`count` examples spread evenly over those late enough to have a persona."""
    eligible = [e for e in examples if e.seeker_turns >= persona_every] or list(examples)
    step = max(1, len(eligible) // max(1, count))
    return list(eligible[::step][:count])


def evaluate_variant(
    model_path: str | Path,
    examples: Sequence[SupportExample],
    oracle: bool,
    decoding: Decoding,
    sample_decoding: Decoding,
    sample_contexts: int,
    persona_every: int,
    batch_size: int,
    seed: int,
    sentence_model,
    kept_path: str | Path,
) -> dict[str, Any]:
    """{key, model, metrics, samples, outputs} of one variant: its metrics on `examples`, its
    output per example (strategy, response, gold strategy, gold response: enough for a strategy
    confusion matrix) and `sample_decoding` responses for `sample_contexts` examples. Kept in
    kept_path with a key of the model's weights, the examples and the settings, so that a
    rerun of the same variant reads it back instead of decoding again."""
    key = hashlib.sha256(json.dumps([file_sha256(model_path), [asdict(e) for e in examples], oracle, asdict(decoding),
                                     asdict(sample_decoding), sample_contexts, persona_every, seed],
                                    sort_keys=True).encode()).hexdigest()
    kept_path = Path(kept_path)
    if kept_path.exists():
        kept = json.loads(kept_path.read_text())
        if kept.get("key") == key:
            return kept
    generator = ResponseGenerator.load(model_path)
    seed_everything(seed)
    metrics, outputs = evaluate_examples(generator, examples, decoding, oracle, batch_size, sentence_model)
    chosen = sample_examples(examples, sample_contexts, persona_every)
    strategies, responses = generator.respond(chosen, sample_decoding, [e.strategy for e in chosen] if oracle else None)
    samples = [{"example": asdict(e), "strategy": s, "responses": r, "gold": generator.as_decoded(e.response)}
               for e, s, r in zip(chosen, strategies, responses)]
    result = {"key": key, "model": str(model_path), "metrics": metrics, "samples": samples, "outputs": outputs}
    write_json(result, kept_path)
    return result


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
