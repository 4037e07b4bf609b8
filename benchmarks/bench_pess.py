"""PESS extractor cost on this machine: seconds per training step, decoding throughput, peak memory.

Builds the extractor of params.yaml (pess.model) and takes real Synthetic-Persona-Chat training
examples. Times, after one warm-up each, `--steps` AdamW steps at pess.train.batch_size
(medians): the base step (NLL only), the full PESS step on a batch whose similarity sets are
kept (NLL + completeness + consistency), and the refresh (greedy decoding of the batch + MiniLM
similarity sets). A full-PESS step then costs full + refresh / pess.loss.refresh_every on
average. Decoding throughput: `--decode` examples at pess.generate.batch_size, in persona
sentences and examples per second, with the weights of `--model` (default: the trained
artifacts/pess/model.pt when present, else the untrained warm start, which decodes to the
length limit). `--append` adds a line to benchmarks/RESULTS.md.

    python benchmarks/bench_pess.py [--steps 5] [--decode 64] [--threads 2] [--model PATH] [--append]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from results_line import publish

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="artifacts/pess/model.pt", help="trained weights, relative to the project")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    import torch

    from flows.lib.config import load_params
    from flows.lib.persona_data import split_examples
    from flows.lib.pess_params import corpus_settings, pess_config, train_settings
    from models.pess import PersonaExtractor, SentenceScorer, persona_sentences
    from models.trainer import batch_at, build_optimizer

    torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml")
    config, settings = pess_config(params, "full"), train_settings(params)
    examples = split_examples(corpus_settings(params), "train")
    batch = batch_at(examples, 0, settings.batch_size, settings.seed)
    histories, golds = [e.history for e in batch], [e.persona for e in batch]
    torch.manual_seed(0)
    extractor = PersonaExtractor(config).train()
    optimizer = build_optimizer(extractor, settings)
    scorer = SentenceScorer(config.sentence_model)
    kept = extractor.refresh_sets(histories, golds, scorer)

    def step(sets) -> None:
        loss = extractor.losses(histories, golds, sets).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    base = median_seconds(lambda: step([None] * len(batch)), args.steps)
    full = median_seconds(lambda: step(kept), args.steps)
    refresh = median_seconds(lambda: extractor.refresh_sets(histories, golds, scorer), args.steps)

    model_path = ROOT / args.model
    trained = model_path.exists()
    decoder = PersonaExtractor.load(model_path) if trained else extractor.eval()
    decode_histories = [e.history for e in examples[: args.decode]]
    size = params["pess"]["generate"]["batch_size"]
    decoder.generate(decode_histories[:size])  # warm-up
    started = time.perf_counter()
    sentences = sum(
        len(persona_sentences(text))
        for start in range(0, len(decode_histories), size)
        for text in decoder.generate(decode_histories[start : start + size])
    )
    decode_seconds = time.perf_counter() - started
    parameters = sum(p.numel() for p in extractor.parameters())
    weights = f"trained {args.model}" if trained else "untrained warm start"
    publish(
        f"benchmarks/bench_pess.py --steps {args.steps} --decode {args.decode} --threads {args.threads} --model {args.model}",
        args.threads,
        f"PESS extractor ({config.backbone}, {parameters / 1e6:.1f} M "
        f"parameters, source {config.max_source_len} / target {config.max_target_len} tokens, batch {settings.batch_size}): "
        f"base step {base:.2f} s, full-PESS step with kept sets {full:.2f} s, refresh (decode + sets) {refresh:.2f} s "
        f"per batch -> full PESS {full + refresh / config.refresh_every:.2f} s/step at refresh_every "
        f"{config.refresh_every} (medians of {args.steps}); decoding ({weights}, greedy, batch {size}) "
        f"{sentences / decode_seconds:.1f} persona sentences/s, {len(decode_histories) / decode_seconds:.2f} examples/s",
        args.append,
    )


if __name__ == "__main__":
    main()
