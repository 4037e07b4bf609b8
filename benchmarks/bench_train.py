"""AMN training throughput (characters per second) on CPU and peak memory per variant.

Each variant runs in a fresh subprocess (so its peak RSS is its own): the model from params.yaml
(`amn.model` sizes, the variant's switches), batches of `train.batch_size` characters with N_diag
snippets of random words (stream lengths as in the real snippets: D ~60%, E ~30%, O ~80% of
`train.max_tokens`), AdamW steps as in flows/lib/amn_training.py. Reports characters/s over the timed
steps and the process's peak RSS. Appends a table to benchmarks/RESULTS.md.

    python benchmarks/bench_train.py [--variants a,b] [--steps 20] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
DEFAULT_VARIANTS = "baseline_char,attn3,attn3_tropetrip_rwmem,attn3_tropetrip500_ksmem,attn3_tropetrip500_ksmem_ndialog32"
FILL = {"D": 0.6, "E": 0.3, "O": 0.8}  # share of max_tokens used per stream
VOCAB, TROPES = 10000, 64


def measure(variant: str, steps: int, threads: int) -> dict:
    import torch

    from flows.lib.config import load_params
    from flows.lib.amn_training import make_optimizer, train_settings, variant_options
    from models.amn import AMN, STREAMS, AMNConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = load_params(ROOT / "params.yaml")
    _, options = variant_options(params, variant)
    settings = train_settings(params)
    model = AMN(AMNConfig(vocab_size=VOCAB, n_tropes=TROPES, **options)).train()
    optimizer = make_optimizer(model, settings)
    batch, n_diag, steps_t = settings.batch_size, options["n_diag"], settings.max_tokens

    def random_batch():
        tokens = {}
        for stream in STREAMS:
            words = torch.randint(1, VOCAB, (batch, n_diag, steps_t))
            lengths = torch.randint(0, int(2 * FILL[stream] * steps_t) + 1, (batch, n_diag, 1)).clamp(max=steps_t)
            tokens[stream] = words * (torch.arange(steps_t) < lengths)
        return tokens, torch.ones(batch, n_diag, dtype=torch.bool), torch.randint(0, TROPES, (batch,))

    def step():
        tokens, mask, labels = random_batch()
        out = model(tokens, mask, labels)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {
        "variant": variant,
        "batch": batch,
        "tokens": steps_t,
        "n_diag": n_diag,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "chars_per_s": batch * steps / seconds,
        "step_ms": 1000 * seconds / steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": rss_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps, args.threads)))
        return

    rows = []
    for variant in args.variants.split(","):
        child = [sys.executable, __file__, "--child", variant, "--steps", str(args.steps), "--threads", str(args.threads)]
        output = subprocess.run(child, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)

    command = "python benchmarks/bench_train.py " + " ".join(sys.argv[1:])
    lines = [
        f"\n## AMN training throughput, CPU ({datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')})\n",
        f"Machine: {platform.processor() or platform.machine()}, 2-core CPU, 24 GiB, shared with other jobs; "
        f"torch threads {args.threads}. Command: `{command.strip()}`. Random-word batches shaped by params.yaml "
        f"(batch {rows[0]['batch']} characters, T = {rows[0]['tokens']} words per stream), {args.steps} timed AdamW "
        "steps after 2 warm-up steps; peak RSS of the whole process (Python + torch + model + optimizer).\n",
        "| variant | N_diag | params (M) | characters/s | ms/step | peak RSS (MiB) | RSS before training (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | {r['n_diag']} | {r['params_m']:.2f} | {r['chars_per_s']:.1f} | {r['step_ms']:.0f} | "
        f"{r['peak_rss_mib']:.0f} | {r['rss_before_mib']:.0f} |"
        for r in rows
    ]
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppend only: each entry says when, on what machine, and how.\n")
    with RESULTS.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
