"""PESS-GEN generator cost on this machine: seconds per training step and per generated response.

Builds the generator from params.yaml (pess.model.backbone, gen.model lengths) and real ESConv
training examples (the first conversations of train.txt; each gets a two-sentence persona so
that the source has the persona part), then times `--steps` AdamW steps at gen.train.batch_size
after two warm-up steps, and decoding of `--responses` examples with beam search and nucleus
sampling (gen.decoding otherwise). Reports the medians and the peak RSS; `--append` adds a line
to benchmarks/RESULTS.md.

    python benchmarks/bench_gen.py [--steps 10] [--responses 16] [--threads 2] [--append]
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

from results_line import publish

ROOT = Path(__file__).resolve().parent.parent
PERSONA = ("I am anxious about losing my job.", "I live with my parents.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--responses", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    import torch

    from flows.lib.config import load_params
    from flows.lib.esconv_examples import build_examples, load_split
    from flows.lib.gen_params import decoding_settings, gen_train_settings, generator_config
    from flows.lib.pess_params import esconv_dir
    from models.generator import ResponseGenerator
    from models.trainer import batch_at, build_optimizer

    torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml")
    config, settings = generator_config(params), gen_train_settings(params)
    examples = [replace(e, persona=PERSONA) for e in build_examples(
        load_split(esconv_dir(params), "train", config.strategies, 20), None,
        params["gen"]["context_turns"], params["gen"]["persona_every"])]
    torch.manual_seed(0)
    generator = ResponseGenerator(config).train()
    optimizer = build_optimizer(generator, settings)
    step_seconds = []
    for step in range(args.steps + 2):
        started = time.perf_counter()
        loss = generator.loss(batch_at(examples, step, settings.batch_size, settings.seed))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            step_seconds.append(time.perf_counter() - started)
    batch = examples[: args.responses]
    decode_seconds = {}
    for method in ("beam", "nucleus"):
        started = time.perf_counter()
        generator.respond(batch, decoding_settings(params, method))
        decode_seconds[method] = (time.perf_counter() - started) / len(batch)
    parameters = sum(p.numel() for p in generator.parameters())
    publish(
        f"benchmarks/bench_gen.py --steps {args.steps} --responses {args.responses} --threads {args.threads}",
        args.threads,
        f"PESS-GEN generator ({config.backbone}, "
        f"{parameters / 1e6:.1f} M parameters, source {config.max_source_len} / target {config.max_target_len} tokens): "
        f"training {statistics.median(step_seconds):.2f} s/step at batch {settings.batch_size} (median of {args.steps}); "
        f"decoding {decode_seconds['beam']:.2f} s/response beam {params['gen']['decoding']['num_beams']}, "
        f"{decode_seconds['nucleus']:.2f} s/response nucleus (batch {len(batch)})",
        args.append,
    )


if __name__ == "__main__":
    main()
