"""Word tokenization (Moses rules): seq2seq's WordTokenizer against sacremoses' MosesTokenizer as it ships, side by
side on the same texts, alternating, one process: texts/s, and whether every text gave the same tokens.

Texts: the Debian package descriptions of classify/train.tsv (long lines with versions, paths and abbreviations) and
the English side of tatoeba/eng-fra.tsv (short sentences). Lowercased as configs/classify.yaml reads them.

usage: python bench/word_tokens.py [--data SHARED_DATA_DIR] [--texts 20000] [--repeats 3] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section

from seq2seq.data.tokenizers import WordTokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CORPORA = {"Debian descriptions": "classify/train.tsv", "Tatoeba English": "tatoeba/eng-fra.tsv"}  # first column


def read_texts(path: Path, count: int) -> list[str]:
    """The first column of a TSV file's first count lines, lowercased."""
    with path.open(encoding="utf-8") as lines:
        return [line.split("\t", 1)[0].rstrip("\n").lower() for line, _ in zip(lines, range(count), strict=False)]


def seconds(tokenize: Callable[[str], list[str]], texts: list[str]) -> tuple[float, list[list[str]]]:
    """Seconds to tokenize the texts one by one, and their tokens."""
    started = time.perf_counter()
    tokens = [tokenize(text) for text in texts]
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--texts", type=int, default=20000, help="texts of each corpus (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings of each (default 3; median)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    args = parser.parse_args()
    from sacremoses import MosesTokenizer

    stock = MosesTokenizer(lang="en")
    ours = WordTokenizer(language="en")
    rows = []
    for name, relative in CORPORA.items():
        texts = read_texts(args.data / relative, args.texts)
        times: dict[str, list[float]] = {"sacremoses": [], "seq2seq": []}
        for _ in range(args.repeats):
            stock_seconds, expected = seconds(lambda text: stock.tokenize(text, escape=False), texts)
            our_seconds, found = seconds(ours.tokenize, texts)
            times["sacremoses"].append(stock_seconds)
            times["seq2seq"].append(our_seconds)
        same = sum(a == b for a, b in zip(found, expected, strict=True))
        tokens = sum(map(len, found))
        stock_s, our_s = statistics.median(times["sacremoses"]), statistics.median(times["seq2seq"])
        rows.append(f"| {name} | {len(texts):,} | {tokens / len(texts):.1f} | {len(texts) / stock_s:,.0f} | "
                    f"{len(texts) / our_s:,.0f} | {stock_s / our_s:.2f}x | {100 * same / len(texts):.2f}% |")
        print(rows[-1], flush=True)
    body = "\n".join([
        f"`python bench/word_tokens.py --texts {args.texts} --repeats {args.repeats}`: one thread, the median of "
        f"{args.repeats} alternating timings; texts lowercased.", "",
        "| texts | count | tokens per text | sacremoses texts/s | seq2seq texts/s | speed-up | same tokens |",
        "|---|---|---|---|---|---|---|", *rows, "",
        "sacremoses builds sets of its Unicode character classes on every test of a word that ends in a period "
        "followed by another word; WordTokenizer builds them once. Long descriptions have many such words, short "
        "sentences almost none (their only period ends the text).",
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Word tokenization: Moses rules", body)


if __name__ == "__main__":
    main()
