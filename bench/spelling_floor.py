"""How far can a new word be spelled from its sound alone? A phonemes-to-letters model trained on the CMUdict
pronunciations of the training words of bench/speech.py, scored on its new words: the error left when hearing is
perfect, against which the speech model's CER on new words is measured.

The words and their split are those of bench/speech.py for the same --words, --test-words and --seed; each word
takes its first CMUdict pronunciation. The model is configs/g2p.yaml with the sides swapped (ARPAbet symbols in,
characters out), trained for --max-time seconds.

usage: python bench/spelling_floor.py [--work DIR] [--data SHARED_DATA] [--words 3000 ...] [--test-words 300]
                                      [--seed 1] [--max-time 300] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section
from speech import DATA, ROOT, STRATEGIES, evaluate, split_words, texts

SWAPPED = ["data.src.kind=word", "data.src.split_punctuation=false", "data.tgt.kind=char", "data.batch_size=64",
           "train.eval_every=0"]


def pronunciations(data: Path) -> dict[str, str]:
    """Each CMUdict word's first pronunciation."""
    found: dict[str, str] = {}
    for line in (data / "cmudict" / "train.tsv").read_text(encoding="utf-8").splitlines():
        word, phonemes = line.split("\t")
        found.setdefault(word, phonemes)
    return found


def floor(args: argparse.Namespace, words: list[str], count: int) -> dict[str, dict[str, float]]:
    """Train phonemes -> letters on the first count words; CER and WER on the new words, per strategy."""
    work = args.work / str(count)
    work.mkdir(parents=True, exist_ok=True)
    split, sounds = split_words(words, count, args.test_words), pronunciations(args.data)
    for name, chosen in (("train", split.seen), ("dev", split.dev), ("test", split.new)):
        (work / f"{name}.tsv").write_text("".join(f"{sounds[word]}\t{word}\n" for word in chosen), encoding="utf-8")
    subprocess.run(["rm", "-rf", str(work / "run")], check=True)
    with open(work / "train.log", "w", encoding="utf-8") as log:  # read it when training fails
        subprocess.run([sys.executable, "-m", "seq2seq.cli", "train", "--config", str(ROOT / "configs" / "g2p.yaml"),
                        "--train", str(work / "train.tsv"), "--dev", str(work / "dev.tsv"), "--out",
                        str(work / "run"), "--max-time", str(args.max_time), *SWAPPED], check=True, stdout=log,
                       stderr=subprocess.STDOUT, env=dict(os.environ, TQDM_DISABLE="1"))
    return evaluate(work / "run", work / "test.tsv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-spelling", help="data and run folder")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (cmudict/, tatoeba/)")
    parser.add_argument("--words", type=int, nargs="+", default=[3000, 6000], help="training word counts")
    parser.add_argument("--test-words", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=float, default=300.0, help="seconds of training per model")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    args = parser.parse_args()
    words, _ = texts(args.data, args.seed)
    rows = []
    for count in args.words:
        scores = floor(args, words, count)
        rows.append(f"| {count} | " + " | ".join(f"{scores[strategy][metric]:.2f}" for metric in ("cer", "wer")
                                                 for strategy in STRATEGIES) + " |")
        print(rows[-1], flush=True)
    body = "\n".join([
        f"`python bench/spelling_floor.py --words {' '.join(map(str, args.words))} --test-words {args.test_words} "
        f"--seed {args.seed} --max-time {args.max_time:.0f}`: configs/g2p.yaml with its sides swapped (ARPAbet in, "
        f"letters out), trained {args.max_time:.0f} s on the first CMUdict pronunciation of the training words of "
        f"`bench/speech.py --words N`, scored on its {args.test_words} new words: spelling from a perfect hearing.",
        "", "| training words | CER % greedy | CER % beam 5 | WER % greedy | WER % beam 5 |", "|---|---|---|---|---|",
        *rows])
    if args.no_write:
        print(body)
    else:
        write_section("Speech: spelling new words from their phonemes", body)


if __name__ == "__main__":
    main()
