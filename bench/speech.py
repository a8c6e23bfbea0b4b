"""Speech recognition of words and short sentences spoken by espeak-ng: CER and WER on a held-out voice (or a
held-out accent) after a time budget, and the speed of transcription against real time.

The data is built reproducibly from --seed (and reused when the same arguments built it before): English words of
the CMU Pronouncing Dictionary that occur in the English side of the Tatoeba eng-fra pairs, and short Tatoeba
sentences (2 to 6 words, letters and apostrophes only, lower-cased), spoken by 14 espeak-ng voices (en and en-us,
variants m1-m4, f1, f2, f4) at speeds 130-190 words per minute and pitches 30-75, with white noise 30 dB below the
speech, written as 16 kHz mono WAV. The test sets are spoken by a voice that training never hears (variant f3, speed
160, pitch 52): the training words again, new words, and new sentences.

With --accent (one of the eight English accents espeak-ng ships: en, en-us, en-gb-scotland, en-gb-x-gbclan,
en-gb-x-rp, en-gb-x-gbcwmd, en-029, en-us-nyc; its mbrola voices are left out), training and dev utterances are
spoken by the seven other accents with the same variants (49 voices), and the test sets by the held-out accent with
variant f3, speed 160 and pitch 52 (`en-gb-scotland+f3 -s 160 -p 52`), so that only the accent differs from the
default test voice; the data go to data-ACCENT/.

`seq2seq train --task speech` trains for --max-time seconds (data preparation included), then `seq2seq evaluate`
scores each test set, and the real-time factor is measured by transcribing the new words in one process. With
--against, a second model trained with those overrides too follows the first (the gain of an option side by side).

usage: python bench/speech.py [--out DIR] [--words 3000] [--repeats 2] [--sentences 1000] [--test-words 300]
                              [--test-sentences 100] [--seed 1] [--max-time 900] [--accent ACCENT]
                              [--against key=value ...] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metered, write_section

from seq2seq.data.synthesis import Voice, espeak_available, write_speech_list

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f4")
SPEEDS, PITCHES = (130, 150, 170, 190), (30, 45, 60, 75)
TEST_VOICE = Voice("en+f3", 160, 52)  # a variant, speed and pitch that no training utterance has
SENTENCE = re.compile(r"[a-z']+(?: [a-z']+){1,5}")
MODEL = ["model.hidden_size=256", "model.embedding_size=128", "model.conv_channels=32", "data.batch_size=32",
         "data.audio.time_masks=2", "data.audio.time_mask_width=10", "data.audio.freq_masks=2",
         "data.audio.freq_mask_width=8", "train.metric=cer", "train.eval_every=250", "train.lr_schedule=linear",
         "train.epochs=0"]


def normalised(sentence: str) -> str | None:
    """A Tatoeba sentence lower-cased without its punctuation, when it is 2 to 6 words of letters and apostrophes."""
    text = re.sub(r"[.,!?;:\"]", " ", sentence.lower().replace("\u2019", "'"))
    text = " ".join(text.split())
    return text if SENTENCE.fullmatch(text) else None


def texts(data: Path, seed: int) -> tuple[list[str], list[str]]:
    """Common words (CMUdict words of 2 to 12 letters found in the Tatoeba sentences) and short sentences, both
    shuffled by seed."""
    lines = (data / "tatoeba" / "eng-fra.tsv").read_text(encoding="utf-8").splitlines()
    sentences = sorted({s for s in (normalised(line.split("\t")[0]) for line in lines) if s})
    used = {word for sentence in sentences for word in sentence.split()}
    entries = (data / "cmudict" / "train.tsv").read_text(encoding="utf-8").splitlines()
    words = sorted({word for word in (line.split("\t")[0] for line in entries)
                    if word in used and word.isalpha() and 2 <= len(word) <= 12})
    rng = random.Random(seed)
    rng.shuffle(words)
    rng.shuffle(sentences)
    return words, sentences


class WordSplit(NamedTuple):
    """The words the model hears in training, the new words of the test set, and the dev words."""

    seen: list[str]
    new: list[str]
    dev: list[str]


def split_words(words: Sequence[str], count: int, test_words: int) -> WordSplit:
    """The first count words for training, the next test_words as new words, the 100 after them for dev."""
    return WordSplit(list(words[:count]), list(words[count:count + test_words]),
                     list(words[count + test_words:count + test_words + 100]))


def training_voices(accent: str | None) -> list[str]:
    """The variants of en and en-us, or with a held-out accent those of every other accent."""
    accents = [other for other in ACCENTS if other != accent] if accent else ["en", "en-us"]
    return [f"{language}+{variant}" for language in accents for variant in VARIANTS]


def test_voice(accent: str | None) -> Voice:
    """The default test voice, or with a held-out accent the same variant, speed and pitch in that accent."""
    return Voice(f"{accent}+f3", TEST_VOICE.speed, TEST_VOICE.pitch) if accent else TEST_VOICE


def build(args: argparse.Namespace) -> dict[str, Path]:
    """Write the training, dev and test lists into args.out / data, or data-ACCENT (unless the same arguments wrote
    them)."""
    folder = args.out / (f"data-{args.accent}" if args.accent else "data")
    recipe = {key: getattr(args, key) for key in ("words", "repeats", "sentences", "test_words", "test_sentences",
                                                  "seed")}
    if args.accent:
        recipe["accent"] = args.accent
    names = ("train", "dev", "test_words_seen", "test_words_new", "test_sentences")
    lists = {name: folder / f"{name}.tsv" for name in names}
    stamp = folder / "recipe.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe and all(p.is_file() for p in lists.values()):
        return lists
    words, sentences = texts(args.data, args.seed)
    if len(words) < args.words + args.test_words + 100 or len(sentences) < args.sentences + args.test_sentences + 50:
        sys.exit(f"not enough text: {len(words)} words, {len(sentences)} sentences")
    rng, voices, held_out = random.Random(args.seed), training_voices(args.accent), test_voice(args.accent)

    def training_voice() -> Voice:
        return Voice(rng.choice(voices), rng.choice(SPEEDS), rng.choice(PITCHES))

    seen, new, dev_words = split_words(words, args.words, args.test_words)
    heard = sentences[:args.sentences]
    items = {"train": [(text, training_voice()) for text in seen * args.repeats + heard],
             "dev": [(text, training_voice()) for text in dev_words + sentences[-50:]],
             "test_words_seen": [(text, held_out) for text in seen[:args.test_words]],
             "test_words_new": [(text, held_out) for text in new],
             "test_sentences": [(text, held_out) for text in sentences[args.sentences:][:args.test_sentences]]}
    started = time.monotonic()
    for number, (name, spoken) in enumerate(items.items()):
        write_speech_list(folder, name, spoken, args.seed * 100 + number)
    count, seconds = sum(map(len, items.values())), time.monotonic() - started
    print(f"synthesized {count} utterances in {seconds:.0f} s ({1000 * seconds / count:.0f} ms each)", flush=True)
    stamp.write_text(json.dumps(recipe))
    return lists


STRATEGIES = {"greedy": ["--strategy", "greedy"], "beam 5": ["--strategy", "beam", "--beam-size", "5"]}


def evaluate(run: Path, listing: Path) -> dict[str, dict[str, float]]:
    """CER, WER and exact match of the run on the listing, per decoding strategy."""
    scores = {}
    for name, options in STRATEGIES.items():
        command = [sys.executable, "-m", "seq2seq.cli", "evaluate", "--model", str(run), "--data", str(listing),
                   "--json", *options]
        scores[name] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return scores


def real_time(run: Path, listing: Path) -> tuple[float, float]:
    """Seconds of audio and seconds that transcribing it took (WAV reading and features included, model loading
    not), in a process of its own."""
    code = (
        "import json, sys, time, soundfile\n"
        "from seq2seq import api\n"
        "from seq2seq.data.audio import read_audio_list\n"
        f"paths = [p.src for p in read_audio_list({str(listing)!r})]\n"
        f"transcriber = api.load({str(run)!r})\n"
        "transcriber.transcribe(paths[:8])\n"
        "started = time.perf_counter()\n"
        "transcriber.transcribe(paths)\n"
        "seconds = time.perf_counter() - started\n"
        "print(json.dumps([sum(soundfile.info(p).duration for p in paths), seconds]))\n")
    audio, seconds = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                               text=True).stdout)
    return audio, seconds


def progress(run: Path) -> dict[str, float]:
    """The last evaluation of the run (its step and epoch)."""
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == "eval"][-1]


class System(NamedTuple):
    """One trained model of the comparison: its name, run folder, scores per test set and strategy, and timing
    (peak RSS, training wall time, seconds of audio transcribed and the seconds it took)."""

    name: str
    run: Path
    scores: dict[str, dict[str, dict[str, float]]]
    timing: tuple[float, float, float, float]


TEST_SETS = ("test_words_seen", "test_words_new", "test_sentences")


def report(args: argparse.Namespace, systems: Sequence[System]) -> str:
    columns = [(metric, strategy) for metric in ("cer", "wer", "exact_match") for strategy in STRATEGIES]
    labels = {"test_words_seen": f"training words, {args.test_words} of them", "test_words_new":
              f"new words ({args.test_words})", "test_sentences": f"new sentences ({args.test_sentences})"}
    rows = [f"| {labels[name]} |" + (f" {system.name} |" if len(systems) > 1 else "")
            + "".join(f" {system.scores[name][strategy][metric]:.2f} |" for metric, strategy in columns)
            for name in TEST_SETS for system in systems]
    command = " ".join(["python bench/speech.py", *(f"--{key.replace('_', '-')} {getattr(args, key)}" for key in
                        ("words", "repeats", "sentences", "test_words", "test_sentences", "seed", "max_time")),
                        *([f"--accent {args.accent}"] if args.accent else []),
                        *(f"--against {shlex.quote(value)}" for value in args.against),
                        *map(shlex.quote, args.overrides)])
    trained = "; ".join(
        f"{system.name}: {system.timing[1]:.0f} s (peak RSS {system.timing[0] / 2**30:.2f} GiB), "
        f"{progress(system.run)['step']} steps, {progress(system.run)['epoch']} epochs" for system in systems)
    speed = "; ".join(f"{system.name}: {system.timing[3]:.1f} s, {system.timing[2] / system.timing[3]:.0f}x real "
                      f"time" for system in systems)
    header = f"| held-out {'accent' if args.accent else 'voice'} |" + (" model |" if len(systems) > 1 else "")
    voices = len(training_voices(args.accent))
    heard = (f"{voices} espeak-ng voices (the {voices // len(VARIANTS)} English accents other than {args.accent}, "
             f"{len(VARIANTS)} variants each)" if args.accent else f"{voices} espeak-ng voices")
    held_out = (f"the held-out accent {args.accent}, voice `{test_voice(args.accent)}`" if args.accent
                else f"the held-out voice `{test_voice(args.accent)}`")
    return "\n".join([
        f"`{command}`: {args.words} words x {args.repeats} voices and {args.sentences} sentences spoken by {heard} "
        f"(training), scored on {held_out}. Model: "
        f"`{' '.join(MODEL)}` (a bidirectional LSTM over 4x subsampled 80-channel log-mels, attention decoder over "
        f"characters); best dev checkpoint by CER. Training (data synthesis not included, one run after the "
        f"other) took {trained}.", "",
        header + " CER % greedy | CER % beam 5 | WER % greedy | WER % beam 5 | exact % greedy | exact % beam 5 |",
        "|---|" + ("---|" if len(systems) > 1 else "") + "---|---|---|---|---|---|", *rows, "",
        f"Transcription (greedy, {args.test_words} new words, {systems[0].timing[2]:.0f} s of audio): {speed}.",
    ])


def train_and_score(args: argparse.Namespace, lists: dict[str, Path], name: str, run: Path,
                    overrides: Sequence[str]) -> System:
    """Train one model for the budget, then score it on each test set and time its transcription."""
    subprocess.run(["rm", "-rf", str(run)], check=True)
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--task", "speech", "--train", str(lists["train"]),
               "--dev", str(lists["dev"]), "--out", str(run), "--max-time", str(args.max_time), *MODEL, *overrides]
    _, peak, wall = run_metered(command, run.parent / f"{run.name}.log", dict(os.environ, TQDM_DISABLE="1"))
    scores = {test: evaluate(run, lists[test]) for test in TEST_SETS}
    print(name, json.dumps(scores), flush=True)
    return System(name, run, scores, (peak, wall, *real_time(run, lists["test_words_new"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-speech", help="data and run folder")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (cmudict/, tatoeba/)")
    parser.add_argument("--words", type=int, default=3000, help="distinct training words")
    parser.add_argument("--repeats", type=int, default=2, help="voices that speak each training word")
    parser.add_argument("--sentences", type=int, default=1000, help="training sentences")
    parser.add_argument("--test-words", type=int, default=300, help="words per test set (seen and new)")
    parser.add_argument("--test-sentences", type=int, default=100, help="test sentences")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=float, default=900.0, help="seconds of training (default 900)")
    parser.add_argument("--accent", choices=ACCENTS, help="hold out this English accent: train on the others, test "
                        "on it")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    parser.add_argument("--against", action="append", default=[], metavar="key=value",
                        help="train a second model with these overrides too, after the first (repeatable)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for the model")
    args = parser.parse_args()
    if not espeak_available():
        sys.exit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    args.out = args.out.resolve()
    lists = build(args)
    systems = [train_and_score(args, lists, "as given", args.out / "run", args.overrides)]
    if args.against:
        systems.append(train_and_score(args, lists, " ".join(args.against), args.out / "against",
                                       [*args.overrides, *args.against]))
    body = report(args, systems)
    if args.no_write:
        print(body)
    else:
        write_section(f"Speech recognition: held-out accent {args.accent}" if args.accent
                      else "Speech recognition: espeak-ng voices", body)


if __name__ == "__main__":
    main()
