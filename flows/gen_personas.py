"""Stage `gen_personas`: infer the ESConv seeker's persona so far, once, with each extractor the generators read.

For every conversation of the ESConv subset (the first gen.conversations.<split> of the train
and test files under esconv.dir) and every inference point k (after seeker utterances
gen.persona_every, 2·gen.persona_every, …; PAL starts at the 3rd), the extractor (gen.extractors)
of each persona source of gen.train.persona_sources reads the conversation up to and including
the k-th seeker utterance, never past it: the selector its seeker utterances, a seq2seq
extractor windows of whole turns (flows/lib/persona_inference.py). Writes paths.gen_personas
(schema GEN_PERSONAS), one row per (source, conversation, k). Resumable: finished conversations
are kept in <paths.gen_dir>/personas/partial.pt every gen.personas_save_every conversations.
"""
from __future__ import annotations

from prefect import flow

from flows.lib.config import load_params, out_path, param
from flows.lib.esconv_examples import load_split, load_strategies
from flows.lib.orchestration import task_of
from flows.lib.persona_inference import write_gen_personas
from flows.lib.gen_params import extractor_paths
from flows.lib.pess_params import esconv_dir


@flow(name="gen_personas")
def gen_personas_flow() -> str:
    params = load_params()
    esconv = esconv_dir(params)
    strategies = load_strategies(esconv / "strategy.json")
    conversations = [c for split in ("train", "test")
                     for c in load_split(esconv, split, strategies, param(params, f"gen.conversations.{split}", int))]
    written = task_of(write_gen_personas)(
        conversations,
        extractor_paths(params),
        param(params, "gen.persona_every", int),
        param(params, "pess.include_partner", bool),
        param(params, "pess.generate.batch_size", int),
        param(params, "gen.personas_save_every", int),
        param(params, "gen.train.device", str),
        out_path(params, "gen_dir") / "personas" / "partial.pt",
        out_path(params, "gen_personas"),
    )
    return str(written)


if __name__ == "__main__":
    gen_personas_flow()
