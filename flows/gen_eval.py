"""Stage gen_eval: score the PESS-GEN variants on the ESConv test subset.

Variants (gen.variants) name a persona source (none | base | pess → the model gen_train wrote
for it) and whether the gold strategy is forced as the decoder prefix (the oracle). Metrics,
all in percent except perplexity, over the first gen.eval.max_examples supporter turns of the
first gen.conversations.test test conversations:

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

Outputs are decoded with gen.decoding; references go through the same tokenizer round trip
(lower case and accent stripping for the uncased MiniLM vocabulary). Writes
metrics/gen_eval.json and reports/gen_samples.md (gen.eval.sample_contexts test contexts,
gen.eval.samples_per_variant nucleus samples per variant). A variant's finished result, with
its output per example (strategy, response, gold strategy, gold response: enough for a
strategy confusion matrix), is kept in <gen.artifacts>/eval/<variant>.json with the key of its
model and settings; a rerun skips it.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

from prefect import flow

from flows.lib.config import choice, file_sha256, load_params, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample, esconv_dir, split_examples
from flows.gen_train import model_path
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.schemas import atomic_path
from flows.lib.text_metrics import distinct, minilm_embedding_f1, rouge
from models.generator import Decoding, ResponseGenerator
from models.pess import rotated_by_half
from models.runtime import load_checkpoint, load_sentence_model, seed_everything

METRICS_PATH = "metrics/gen_eval.json"
SAMPLES_PATH = "reports/gen_samples.md"


def bleu_n(hypotheses: list[str], references: list[str], order: int) -> float:
    """Corpus BLEU-n (cumulative up to `order`, brevity penalty), lower-cased, 0-100."""
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return float(BLEU(max_ngram_order=order, lowercase=True).corpus_score(hypotheses, [references]).score)


def load_generator(path: str | Path, device: str = "cpu") -> ResponseGenerator:
    """A trained generator from its checkpoint (one-line error when missing or torn)."""
    return ResponseGenerator.from_checkpoint(load_checkpoint(path)).to(device).eval()


def decoding_settings(params: dict[str, Any], method: str | None = None) -> Decoding:
    raw = dict(param(params, "gen.decoding", dict))
    unknown = set(raw) - set(Decoding.__dataclass_fields__)
    if unknown:
        raise PipelineInputError(f"params.yaml: unknown keys under gen.decoding: {', '.join(sorted(unknown))}")
    choice(params, "gen.decoding.method", ["beam", "nucleus"])
    settings = Decoding(**raw)
    return replace(settings, method=method) if method else settings


def variant_settings(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """variant -> {persona, oracle_strategy}, with the persona source checked against gen_train's."""
    variants = param(params, "gen.variants", dict)
    trained = param(params, "gen.train.persona_sources", list)
    settings = {}
    for name, spec in variants.items():
        if not isinstance(spec, dict) or spec.get("persona") not in trained:
            raise PipelineInputError(f"params.yaml: gen.variants.{name}.persona must be one of gen.train.persona_sources ({', '.join(trained)})")
        settings[name] = {"persona": spec["persona"], "oracle_strategy": bool(spec.get("oracle_strategy", False))}
    return settings


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
        **{f"bleu_{n}": bleu_n(hypotheses, references, n) for n in (1, 2, 4)},
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


def samples_markdown(contexts: list[dict[str, Any]], decoding: Decoding) -> str:
    lines = [
        "# PESS-GEN samples",
        "",
        f"{decoding.num_return_sequences} nucleus samples per variant (top-p {decoding.top_p}, top-k {decoding.top_k}, "
        f"temperature {decoding.temperature}); the strategy is the model's argmax (the gold one for an oracle variant).",
        "",
    ]
    for n, context in enumerate(contexts, start=1):
        lines += [f"## Context {n}: `{context['conversation_id']}`, supporter turn {context['turn_index']}", ""]
        lines += [f"> **{t['speaker']}** {t['strategy']} {t['text']}".replace("  ", " ") for t in context["context"]]
        lines += ["", f"Gold: **{context['gold_strategy']}** {context['gold']}", ""]
        for variant, result in context["variants"].items():
            persona = "; ".join(result["persona"]) if result["persona"] else "(none)"
            lines += [f"### {variant}", "", f"Persona: {persona}", ""]
            lines += [f"{k}. **{result['strategy']}** {text}" for k, text in enumerate(result["responses"], start=1)]
            lines.append("")
    return "\n".join(lines)


def _result_key(model_file: str, settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([file_sha256(model_file), settings], sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# stage


def evaluate_gen(
    esconv: str,
    personas_path: str,
    data_hashes: dict[str, str],
    variants: dict[str, dict[str, Any]],
    artifacts: str,
    test_conversations: int,
    max_examples: int,
    context_turns: int,
    persona_every: int,
    decoding: dict[str, Any],
    sample_decoding: dict[str, Any],
    sample_contexts: int,
    batch_size: int,
    seed: int,
    sentence_model_name: str,
    metrics_path: str,
    samples_path: str,
) -> str:
    """Pure stage body: every variant on the test subset -> metrics JSON and samples markdown."""
    sentence_model = load_sentence_model(sentence_model_name)
    results, contexts = {}, {}
    for variant, spec in variants.items():
        model_file = str(model_path(artifacts, spec["persona"]))
        settings = {"variant": spec, "decoding": decoding, "sample_decoding": sample_decoding, "seed": seed,
                    "data": data_hashes, "test_conversations": test_conversations, "max_examples": max_examples,
                    "context_turns": context_turns, "persona_every": persona_every, "sample_contexts": sample_contexts}
        kept_path = Path(artifacts) / "eval" / f"{variant}.json"
        key = _result_key(model_file, settings)
        if kept_path.exists() and json.loads(kept_path.read_text()).get("key") == key:
            results[variant] = json.loads(kept_path.read_text())
        else:
            generator = load_generator(model_file)
            examples = split_examples(esconv, personas_path, spec["persona"], "test", test_conversations,
                                      generator.config.strategies, context_turns, persona_every)[: max_examples or None]
            seed_everything(seed)
            metrics, outputs = evaluate_examples(generator, examples, Decoding(**decoding), spec["oracle_strategy"],
                                                 batch_size, sentence_model)
            chosen = sample_examples(examples, sample_contexts, persona_every)
            strategies, responses = generator.respond(chosen, Decoding(**sample_decoding),
                                                      [e.strategy for e in chosen] if spec["oracle_strategy"] else None)
            samples = [{"example": asdict(e), "strategy": s, "responses": r, "gold": generator.as_decoded(e.response)}
                       for e, s, r in zip(chosen, strategies, responses)]
            results[variant] = {"key": key, "model": model_file, "metrics": metrics, "samples": samples, "outputs": outputs}
            write_json(results[variant], kept_path)
        for sample in results[variant]["samples"]:
            example = sample["example"]
            context = contexts.setdefault((example["conversation_id"], example["turn_index"]), {
                "conversation_id": example["conversation_id"], "turn_index": example["turn_index"],
                "context": example["context"], "gold_strategy": example["strategy"], "gold": sample["gold"], "variants": {}})
            context["variants"][variant] = {"persona": example["persona"], "strategy": sample["strategy"], "responses": sample["responses"]}
    write_json({"variants": {v: {"persona": variants[v]["persona"], "oracle_strategy": variants[v]["oracle_strategy"],
                                 "model": r["model"], **r["metrics"]} for v, r in results.items()},
                "decoding": decoding}, metrics_path)
    with atomic_path(Path(samples_path)) as tmp:
        tmp.write_text(samples_markdown(list(contexts.values()), Decoding(**sample_decoding)) + "\n")
    return metrics_path


evaluate_gen_task = stage_task(evaluate_gen)


@flow(name="gen_eval")
def gen_eval_flow(method: str | None = None) -> str:
    params = load_params()
    esconv = esconv_dir(params)
    personas_path = param(params, "gen.personas", str)
    artifacts = param(params, "gen.artifacts", str)
    variants = variant_settings(params)
    models = sorted({str(model_path(artifacts, spec["persona"])) for spec in variants.values()})
    sample_decoding = replace(decoding_settings(params, "nucleus"),
                              num_return_sequences=param(params, "gen.eval.samples_per_variant", int))
    return run_stage(
        evaluate_gen_task,
        outputs=[METRICS_PATH, SAMPLES_PATH],
        esconv=str(esconv),
        personas_path=personas_path,
        data_hashes=fingerprint(esconv, personas_path, *models),
        variants=variants,
        artifacts=artifacts,
        test_conversations=param(params, "gen.conversations.test", int),
        max_examples=param(params, "gen.eval.max_examples", int),
        context_turns=param(params, "gen.context_turns", int),
        persona_every=param(params, "gen.persona_every", int),
        decoding=asdict(decoding_settings(params, method)),
        sample_decoding=asdict(sample_decoding),
        sample_contexts=param(params, "gen.eval.sample_contexts", int),
        batch_size=param(params, "gen.eval.batch_size", int),
        seed=param(params, "gen.train.seed", int),
        sentence_model_name=param(params, "embed.model", str),
        metrics_path=METRICS_PATH,
        samples_path=SAMPLES_PATH,
    )


if __name__ == "__main__":
    gen_eval_flow()
