"""eng->fra started from a French language model (`--init`) against the same model trained from scratch, for the
same wall time in all.

On the peer setup of bench/translation.py (its data split, configs/eng-fra-peers.yaml), a word LSTM language model of
the training targets (the French side of the training pairs only: no dev or test sentence) trains for --lm-budget
seconds with the decoder's sizes and target tokenizer settings (and, with --adaptive-softmax CUTOFFS, that output layer;
the full softmax by default); the translation model that starts its decoder from
it trains for --budget minus that, the one from scratch for --budget. Both are scored on the test split (BLEU and
chrF, detokenized; greedy and beam 5).

usage: python bench/translation_init.py --peers PEERS_DIR --work SCRATCH_DIR [--budget 900] [--lm-budget 300]
                                       [--adaptive-softmax CUTOFFS]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section
from translation import BEAM, prepare, score_ours, train_run

from seq2seq.config import load_config
from seq2seq.decoding.options import DecodingOptions

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "eng-fra-peers.yaml"


def language_model_overrides() -> list[str]:
    """The recipe's target tokenizer settings and decoder sizes, as a language model's settings."""
    config = load_config(RECIPE)
    tokens = {f"data.tgt.{field.name}": getattr(config.data.tgt, field.name) for field in fields(config.data.tgt)}
    sizes = {f"model.{name}": getattr(config.model, name)
             for name in ("rnn", "embedding_size", "hidden_size", "num_layers", "dropout")}
    settings = {**tokens, **sizes, "data.entries": "line", "data.batch_size": config.data.batch_size}
    return [f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in settings.items()]


def train_language_model(data: Path, work: Path, budget: float, threads: int, cutoffs: str) -> Path:
    out = work / "runs" / "fr-lm"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--task", "lm", "--train", str(data / "train.tok.fr"),
               "--out", str(out), "--max-time", str(budget), f"train.threads={threads}", *language_model_overrides(),
               f"model.adaptive_softmax=[{cutoffs}]"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    run_metered(command, work / "fr-lm_train.log", env)
    return out


def lm_output(cutoffs: str) -> str:
    """The language model's output layer, in words."""
    return f"adaptive softmax, cutoffs [{cutoffs}]" if cutoffs else "full softmax"


def scores(run: Path, data: Path, threads: int) -> dict[str, float]:
    greedy = score_ours(run, data, threads)
    beam = score_ours(run, data, threads, DecodingOptions(strategy="beam", beam_size=BEAM))
    return {"bleu": greedy["bleu"], "chrf": greedy["chrf"], "bleu_beam": beam["bleu"], "chrf_beam": beam["chrf"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds of training for each side, in all")
    parser.add_argument("--lm-budget", type=float, default=300.0, help="seconds of it for the language model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--adaptive-softmax", default="",
                        help="the language model's model.adaptive_softmax cutoffs, e.g. 1000,4000 (default: none)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.peers.resolve(), work)
    lm = train_language_model(data, work, args.lm_budget, args.threads, args.adaptive_softmax)
    started_run, started = train_run(data, work, args.budget - args.lm_budget, args.threads, "started",
                                     (f"model.init={lm}",))
    fresh_run, fresh = train_run(data, work, args.budget, args.threads, "fresh")
    rows = [("from scratch", fresh, scores(fresh_run, data, args.threads), f"{args.budget:.0f} s"),
            ("decoder from the language model", started, scores(started_run, data, args.threads),
             f"{args.lm_budget:.0f} s + {args.budget - args.lm_budget:.0f} s")]
    body = "\n".join([
        "| eng-fra model | training | updates | best dev loss | test BLEU greedy | test BLEU beam 5 | chrF greedy |",
        "|---|---|---|---|---|---|---|",
        *(f"| {name} | {budget} | {figures['steps']:,} | {figures['dev_loss']:.3f} | {score['bleu']:.2f} | "
          f"{score['bleu_beam']:.2f} | {score['chrf']:.2f} |" for name, figures, score, budget in rows), "",
        f"Command: `python bench/translation_init.py --peers PEERS --work SCRATCH --budget {args.budget:g} "
        f"--lm-budget {args.lm_budget:g} --adaptive-softmax '{args.adaptive_softmax}'`, one run after the other. The "
        "language model read the French side of the training pairs only (word LSTM of the decoder's sizes, "
        f"configs/eng-fra-peers.yaml's target tokens; {lm_output(args.adaptive_softmax)}); the "
        "started model takes its vocabulary, embeddings and LSTM into the decoder (the bidirectional encoder "
        "starts fresh), with the recipe otherwise unchanged."])
    print(body)
    write_section("Translation: eng-fra started from a French language model", body)


if __name__ == "__main__":
    main()
