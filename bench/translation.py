"""Train eng->fra on the peer benchmark setup for a wall-clock budget, side by side with OpenNMT-py.

Reproduces the setup of the peer scripts (Tatoeba pairs of at most 10 words, seed-1 shuffle, 2,000 dev / 2,000
test, Moses-tokenized words with frequency >= 2, BiLSTM 2x128 encoder, LSTM 256 decoder with Luong general
attention and input feeding, Adam 1e-3, clip 5, batches of 64 sentences, 2 threads) and reports target tokens/s,
time to the first step, peak memory, test BLEU / chrF (detokenized, sacrebleu; greedy and beam 5) and greedy
sentences/s. It fails (exit status 1, a FAIL line in its BENCHMARKS section) when the last third of seq2seq's
training is more than 10% slower than its first third (the medians of the interval rates of metrics.jsonl). With
--design transformer both train the same Transformer instead (configs/eng-fra-transformer.yaml,
bench/configs/onmt_transformer.yaml). With --max-steps N our run stops after N updates (quality per update: N is
OpenNMT-py's update count in the same budget) and its figures go to a section of their own.

usage: python bench/translation.py --peers PEERS_DIR --work SCRATCH_DIR [--budget 900]
           [--onmt-python PEER_VENV/bin/python] [--onmt-budget SECONDS] [--design rnn|transformer] [--max-steps N]
PEERS_DIR holds prepare_data.py, train_onmt.py, decode_onmt.py, score.py and configs/ (the peer benchmark kit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import sacrebleu
from sacremoses import MosesDetokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

import seq2seq
from seq2seq.decoding.options import DecodingOptions
from seq2seq.evaluation import metrics
from seq2seq.training import throughput

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
BEAM = 5  # the beam size of the beam rows (the default length penalty)


@dataclass(frozen=True)
class Design:
    """What --design trains: our config and overrides, OpenNMT-py's config (relative to the peer kit or absolute)
    and the BENCHMARKS.md section."""

    ours: Path
    onmt: str
    section: str
    overrides: tuple[str, ...] = ()


DESIGNS = {
    "rnn": Design(ROOT / "configs" / "eng-fra-peers.yaml", "configs/onmt_rnn.yaml",
                  "Training: Tatoeba eng-fra, peer setup"),
    "transformer": Design(ROOT / "configs" / "eng-fra-transformer.yaml",
                          str(ROOT / "bench" / "configs" / "onmt_transformer.yaml"),
                          "Training: Tatoeba eng-fra, Transformer against OpenNMT-py's",
                          ("train.lr_schedule=inverse_sqrt",)),
}


def prepare(peers: Path, work: Path) -> Path:
    data = work / "data"
    if not (data / "train.tok.en").exists():
        env = dict(os.environ, PAIRS_TSV=str(peers.parent / "data" / "tatoeba" / "eng-fra.tsv"), DATA_DIR=str(data))
        subprocess.run([sys.executable, str(peers / "prepare_data.py")], env=env, check=True)
    return data


def train_run(data: Path, work: Path, budget: float, threads: int, name: str = "seq2seq",
              overrides: tuple[str, ...] = (), config: Path = DESIGNS["rnn"].ours) -> tuple[Path, dict[str, float]]:
    """Train config (the peer setup by default) with overrides into work/runs/NAME for budget seconds; its
    directory and training figures: rates, their decay, first step, peak memory, updates, best dev loss."""
    out = work / "runs" / name
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(config),
               "--train", f"{data}/train.tok.en,{data}/train.tok.fr", "--dev", f"{data}/dev.tok.en,{data}/dev.tok.fr",
               "--out", str(out), "--max-time", str(budget), f"train.threads={threads}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    start, peak, wall = run_metered(command, work / f"{name}_train.log", env)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "train"]
    first, last = steps[0], steps[-1]
    decay = throughput.decay(throughput.steady_rates(records))
    return out, {"tokens_per_s": last["tokens"] / (last["time"] - start), "rate_ratio": decay.ratio,
                 "rate_holds": decay.holds(), "rate_line": decay.line(),  # type: ignore[dict-item]
                 "steady_tokens_per_s": (last["tokens"] - first["tokens"]) / (last["time"] - first["time"]),
                 "first_step_s": first["time"] - start, "peak_gib": peak / GIB, "steps": last["step"],
                 "wall_s": wall, "dev_loss": min(r["loss"] for r in records if r["event"] == "eval")}


def train_ours(data: Path, work: Path, budget: float, threads: int, design: Design) -> dict[str, float]:
    """The design's figures, training and test scores."""
    out, figures = train_run(data, work, budget, threads, overrides=design.overrides, config=design.ours)
    beam = score_ours(out, data, threads, DecodingOptions(strategy="beam", beam_size=BEAM))
    return {**figures, **score_ours(out, data, threads), **{f"{key}_beam": beam[key] for key in ("bleu", "chrf", "bp")}}


def score_ours(model_dir: Path, data: Path, threads: int, options: DecodingOptions | None = None,
               split: str = "test") -> dict[str, float]:
    """BLEU, chrF, brevity penalty and sentences/s of the run's outputs for the split's tokenized sources,
    detokenized and scored against its raw references (greedy unless options say otherwise)."""
    import torch

    torch.set_num_threads(threads)
    translator = seq2seq.load(model_dir)
    sources = (data / f"{split}.tok.en").read_text(encoding="utf-8").splitlines()
    references = (data / f"{split}.fr").read_text(encoding="utf-8").splitlines()
    started = time.perf_counter()
    outputs = translator.translate(sources, options, batch_size=64)
    seconds = time.perf_counter() - started
    detokenizer = MosesDetokenizer(lang="fr")
    hypotheses = [detokenizer.detokenize(o.split()) for o in outputs]
    refs = [[r] for r in references]
    bleu = metrics.bleu(hypotheses, refs)
    return {"bleu": bleu.score, "chrf": metrics.chrf(hypotheses, refs).score, "sentences_per_s": len(sources) / seconds,
            "bp": sacrebleu.corpus_bleu(hypotheses, [references]).bp,
            "bleu_signature": bleu.signature}  # type: ignore[dict-item]


def train_onmt(python: str, peers: Path, work: Path, budget: float, threads: int, decode: bool,
               config: Path) -> dict[str, float]:
    bin_dir = Path(python).parent
    subprocess.run(["rm", "-rf", str(work / "runs" / "onmt")], check=True)
    (work / "runs" / "onmt").mkdir(parents=True)
    env = dict(os.environ, TRAIN_BUDGET_S=str(budget), THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               STEP_LOG=str(work / "onmt_steps.jsonl"))
    subprocess.run([str(bin_dir / "onmt_build_vocab"), "-config", str(config), "-n_sample", "-1"], cwd=work, check=True,
                   capture_output=True)
    os.chdir(work)
    _, peak, wall = run_metered([python, str(peers / "train_onmt.py"), str(config)], work / "onmt_train.log", env)
    rows = [json.loads(line) for line in (work / "onmt_steps.jsonl").read_text().splitlines()]
    result = {"tokens_per_s": rows[-1][3] / rows[-1][1], "first_step_s": rows[0][1], "peak_gib": peak / GIB,
              "steady_tokens_per_s": (rows[-1][3] - rows[0][3]) / (rows[-1][1] - rows[0][1]),
              "steps": rows[-1][0], "wall_s": wall}
    if decode:
        checkpoint = max((work / "runs" / "onmt").glob("model_step_*.pt"), key=os.path.getmtime)
        for beam, suffix in ((1, ""), (BEAM, "_beam")):
            outputs = f"onmt_beam{beam}.txt"
            subprocess.run([python, str(peers / "decode_onmt.py"), str(checkpoint), "data/test.tok.en", outputs,
                            str(beam)], cwd=work, env=env, check=True, capture_output=True)
            score = subprocess.run([python, str(peers / "score.py"), outputs, "data/test.fr", "--tokenized"],
                                   cwd=work, check=True, capture_output=True, text=True)
            result.update({key + suffix: value for key, value in json.loads(score.stdout).items()
                           if key in ("bleu", "chrf", "bp")})
    return result


def table(ours: dict[str, float], onmt: dict[str, float] | None) -> str:
    rows = [("target tokens/s (whole run)", "tokens_per_s", "{:,.0f}"),
            ("target tokens/s (steady: first to last step)", "steady_tokens_per_s", "{:,.0f}"),
            ("target tokens/s, last third / first third", "rate_ratio", "{:.3f}"),
            ("time to first step", "first_step_s", "{:.1f} s"),
            ("peak memory (process tree)", "peak_gib", "{:.2f} GiB"), ("updates", "steps", "{:,.0f}"),
            ("test BLEU greedy", "bleu", "{:.2f}"), ("test chrF greedy", "chrf", "{:.2f}"),
            ("test BLEU beam 5", "bleu_beam", "{:.2f}"), ("test chrF beam 5", "chrf_beam", "{:.2f}"),
            ("test brevity penalty beam 5", "bp_beam", "{:.3f}"),
            ("greedy sentences/s (batch 64)", "sentences_per_s", "{:,.0f}")]
    header = "| | seq2seq | OpenNMT-py 3.5.1 | ratio |\n|---|---|---|---|\n" if onmt else "| | seq2seq |\n|---|---|\n"
    lines = []
    for label, key, fmt in rows:
        cells = [fmt.format(ours[key]) if key in ours else "-"]
        if onmt is not None:
            cells.append(fmt.format(onmt[key]) if key in onmt else "-")
            cells.append(f"{ours[key] / onmt[key]:.2f}x" if key in ours and key in onmt and onmt[key] else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return header + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--onmt-python", help="python of a venv with OpenNMT-py 3.5.1 (the peers' setup_venvs.sh)")
    parser.add_argument("--onmt-budget", type=float, default=0.0, help="default: --budget")
    parser.add_argument("--design", choices=sorted(DESIGNS), default="rnn",
                        help="rnn: the peer kit's setup; transformer: configs/eng-fra-transformer.yaml against "
                             "bench/configs/onmt_transformer.yaml")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="stop our run after this many updates (its own section: quality per update)")
    args = parser.parse_args()
    design = DESIGNS[args.design]
    if args.max_steps:
        design = replace(design, overrides=(*design.overrides, f"train.max_steps={args.max_steps}"),
                         section=f"{design.section}, {args.max_steps:,} updates")
    args.work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.peers.resolve(), args.work.resolve())
    onmt = None
    if args.onmt_python:
        onmt_budget = args.onmt_budget or args.budget
        onmt = train_onmt(args.onmt_python, args.peers.resolve(), args.work.resolve(), onmt_budget, args.threads,
                          decode=onmt_budget == args.budget, config=args.peers.resolve() / design.onmt)
    ours = train_ours(data, args.work.resolve(), args.budget, args.threads, design)
    body = table(ours, onmt)
    command = (f"python bench/translation.py --peers PEERS --work SCRATCH --budget {args.budget:g} "
               f"--design {args.design}" + (f" --max-steps {args.max_steps}" if args.max_steps else ""))
    if onmt:
        command += f" --onmt-python PEER_VENV/bin/python --onmt-budget {args.onmt_budget or args.budget:g}"
    note = (f"Command: `{command}`. Training budget {args.budget:.0f} s of wall time from process start for seq2seq"
            + (f", {args.onmt_budget or args.budget:.0f} s for OpenNMT-py" if onmt else "")
            + ", run one after the other."
            f" BLEU signature: `{ours['bleu_signature']}`.")
    rate = f"seq2seq's training rate: {ours['rate_line']}"
    print(body + "\n" + rate)
    write_section(design.section, body + "\n\n" + note + "\n\n" + rate)
    if not ours["rate_holds"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
