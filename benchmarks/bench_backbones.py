"""Backbone cost on this machine: today's minilm-bert2bert (seq2seq) against smollm2
(SmolLM2-135M-Instruct, causal), issues 16 and 17.

Each backbone is measured in its own child process, so that its peak RSS is its own: load time
(models.backbone loaders, nothing from a hub); seconds per full fine-tuning step (AdamW over every
weight, batch `--batch`, `--warmup` untimed steps, then the mean of `--steps`) at 1 torch thread
and at 2 (`--two-thread-warmup`, `--two-thread-steps`: fewer where time is short, since a second
thread on the shared cores is slow); greedy decoding of 48 new tokens (exactly: EOS is held off)
at batch 1 and batch `--batch`, in new tokens per second, at 1 thread. Inputs are real ESConv training
conversations: minilm-bert2bert gets the seeker's utterances as a 128-token source and the
supporter's as a 48-token target; smollm2 gets the seeker's utterances as 128 tokens, learnt as a
language model. The smollm2 child then writes greedy zero-shot persona extractions (its chat
template, three prompt wordings) for two seeker histories, to see whether they are usable.

    python benchmarks/bench_backbones.py [--steps 5] [--warmup 2] [--batch 8] [--two-thread-steps 5]
        [--two-thread-warmup 2] [--esconv DIR] [--write]

--write: the figures and samples to benchmarks/backbones.json (RESULTS.md's section is written
from it by hand, with what they mean).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = Path(__file__).resolve().parent / "backbones.json"
SOURCE_TOKENS, TARGET_TOKENS, NEW_TOKENS = 128, 48, 48
THREADS = (1, 2)
PROMPTS = (
    "List short facts the speaker states about themself:\n{utterances}",
    "Here is what a person said in a conversation:\n{utterances}\n\nWrite what we learn about this person as short "
    "first-person sentences, one per line (for example: I have a dog.).",
    "Read the speaker's messages and extract their persona: facts about their job, family, situation and feelings. "
    "Answer with a bulleted list.\n\nMessages:\n{utterances}",
)
SAMPLE_UTTERANCES = 10  # the first seeker utterances of a history shown to the model
SAMPLE_TOKENS = 80


def conversations(esconv: Path, limit: int = 60):
    from flows.lib.esconv_examples import load_split, load_strategies

    return load_split(esconv, "train", load_strategies(esconv / "strategy.json"), limit=limit)


def turns_text(conversation, speaker: str) -> str:
    return " ".join(turn.text for turn in conversation.turns if turn.speaker == speaker)


def timed_steps(step, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return seconds


def decode_rate(generate, batch_size: int) -> float:
    """New tokens per second of one greedy generation of NEW_TOKENS, after a 2-token warm-up."""
    generate(batch_size, 2)
    started = time.perf_counter()
    generate(batch_size, NEW_TOKENS)
    return batch_size * NEW_TOKENS / (time.perf_counter() - started)


def measure(name: str, args: argparse.Namespace) -> dict:
    import torch

    from models.backbone import BackboneConfig, build_backbone, build_causal_backbone
    from models.generator import SEEKER, SUPPORTER

    torch.set_num_threads(1)
    torch.manual_seed(0)
    started = time.perf_counter()
    if name == "smollm2":
        model, tokenizer = build_causal_backbone(name)
    else:
        model, tokenizer = build_backbone(BackboneConfig(backbone=name), None)
    load_seconds = time.perf_counter() - started

    # The first conversations whose seeker says at least SOURCE_TOKENS tokens: every batch is full length
    pool = [c for c in conversations(args.esconv) if len(tokenizer(turns_text(c, SEEKER)).input_ids) >= SOURCE_TOKENS]
    pool = pool[: args.batch]
    source = tokenizer([turns_text(c, SEEKER) for c in pool], max_length=SOURCE_TOKENS, truncation=True,
                       padding="max_length", return_tensors="pt")  # (batch, 128)
    if name == "smollm2":
        labels = source.input_ids  # causal LM: the model shifts them
    else:
        target = tokenizer([turns_text(c, SUPPORTER) for c in pool], max_length=TARGET_TOKENS, truncation=True,
                           padding="max_length", return_tensors="pt")  # (batch, 48)
        labels = target.input_ids.masked_fill(target.attention_mask == 0, -100)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        loss = model(input_ids=source.input_ids, attention_mask=source.attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step_seconds = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        warmup, steps = (args.warmup, args.steps) if threads == 1 else (args.two_thread_warmup, args.two_thread_steps)
        seconds = timed_steps(step, warmup, steps)
        step_seconds[str(threads)] = {"mean": statistics.mean(seconds), "each": seconds, "warmup": warmup}

    model.eval()
    # bert2bert's special ids, as models/pess.py's generate passes them (SmolLM2's come with it)
    special = {} if name == "smollm2" else {"decoder_start_token_id": model.config.decoder_start_token_id,
                                             "eos_token_id": model.config.eos_token_id}

    def generate(batch_size: int, new_tokens: int) -> None:
        with torch.no_grad():
            model.generate(input_ids=source.input_ids[:batch_size], attention_mask=source.attention_mask[:batch_size],
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id, **special)

    # One thread: on the shared cores a second thread made decoding ~10x slower (RESULTS.md)
    torch.set_num_threads(1)
    decode = {str(size): decode_rate(generate, size) for size in (1, args.batch)}

    result = {
        "backbone": name,
        "model_class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "load_seconds": load_seconds,
        "step_seconds": step_seconds,
        "decode_tokens_per_second_1_thread": decode,
        "inputs": (f"ESConv train seeker text, {SOURCE_TOKENS} tokens" +
                   (f" -> supporter text, {TARGET_TOKENS} tokens" if name != "smollm2" else ", causal LM labels")),
    }
    if name == "smollm2":
        result["samples"] = extraction_samples(model, tokenizer, args.esconv)
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def extraction_samples(model, tokenizer, esconv: Path) -> list[dict]:
    """Greedy zero-shot persona extractions on the first two training conversations whose seeker
    says at least SAMPLE_UTTERANCES things."""
    import torch

    from flows.lib.esconv_examples import seeker_utterances

    histories = [c for c in conversations(esconv) if len(seeker_utterances(c)) >= SAMPLE_UTTERANCES][:2]
    samples = []
    for conversation in histories:
        utterances = "\n".join(f"- {u}" for u in seeker_utterances(conversation)[:SAMPLE_UTTERANCES])
        for prompt in PROMPTS:
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt.format(utterances=utterances)}],
                                                 tokenize=False, add_generation_prompt=True)
            inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                output = model.generate(**inputs, max_new_tokens=SAMPLE_TOKENS, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
            samples.append({
                "conversation_id": conversation.conversation_id,
                "situation": conversation.situation,
                "prompt": prompt.split("\n")[0],
                "utterances": seeker_utterances(conversation)[:SAMPLE_UTTERANCES],
                "output": tokenizer.decode(output[0, inputs.input_ids.shape[1]:], skip_special_tokens=True).strip(),
            })
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--two-thread-steps", type=int, default=5, help="timed steps at 2 threads")
    parser.add_argument("--two-thread-warmup", type=int, default=2, help="warm-up steps at 2 threads")
    parser.add_argument("--esconv", type=Path, default=ROOT.parent / "shared/data/esconv",
                        help="ESConv folder (train.txt, strategy.json); a worktree gives the absolute path")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one backbone, measured in this process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return

    from flows.lib.config import write_json

    command = (f"benchmarks/bench_backbones.py --steps {args.steps} --warmup {args.warmup} --batch {args.batch} "
               f"--two-thread-steps {args.two_thread_steps} --two-thread-warmup {args.two_thread_warmup}")
    results = {}
    for name in ("minilm-bert2bert", "smollm2"):
        child = subprocess.run([sys.executable, __file__, "--child", name, *command.split()[1:],
                                "--esconv", str(args.esconv)],
                               cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        figures = results[name]
        print(f"{name}: {figures['parameters'] / 1e6:.1f} M, load {figures['load_seconds']:.1f} s, step s/it "
              + ", ".join(f"{t} thr {v['mean']:.2f}" for t, v in figures["step_seconds"].items())
              + ", decode tok/s (1 thread) " + json.dumps(figures["decode_tokens_per_second_1_thread"])
              + f", peak RSS {figures['peak_rss_gib']:.2f} GiB", flush=True)
    if args.write:
        write_json({
            "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            "machine": f"{platform.machine()} CPU, 2 cores shared with other agents' jobs, 24 GiB",
            "command": f".venv/bin/python {command} --write",
            "settings": {"batch": args.batch, "warmup_steps": args.warmup, "timed_steps": args.steps,
                         "two_thread_warmup_steps": args.two_thread_warmup, "two_thread_timed_steps": args.two_thread_steps,
                         "optimizer": "torch.optim.AdamW over every weight, lr 1e-5", "threads": list(THREADS),
                         "source_tokens": SOURCE_TOKENS, "target_tokens": TARGET_TOKENS, "new_tokens": NEW_TOKENS},
            "backbones": results,
        }, OUTPUT)


if __name__ == "__main__":
    main()
