"""The front end of a speech model: WAV files in, features, length-sorted batches, decoding, transcripts out, and
their scores against references; the part of speech recognition that SpeechTranscriber (PyTorch) and
OnnxTranscriber (ONNX Runtime) share, without torch. They differ only in their runtime (`facade.Facade`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seq2seq.config import Config
from seq2seq.data.audio import load_frames
from seq2seq.data.batching import length_batches
from seq2seq.data.checks import check_outputs_vary
from seq2seq.data.lines import Pair
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import Vocab
from seq2seq.decoding.arrays import Array
from seq2seq.decoding.options import BATCH_SIZE, DecodingOptions, Hypothesis, output_cap, with_knobs
from seq2seq.decoding.search import decode
from seq2seq.tasks.facade import Facade


class Transcribing(Facade):
    """Transcripts of 16 kHz mono WAV files over a model's transcript tokenizer and vocabulary; a facade supplies its
    runtime."""

    model: Any
    config: Config
    tokenizer: Tokenizer
    vocab: Vocab
    target_lengths: dict[str, float]  # of the training transcripts, in tokens

    def transcribe(self, paths: Sequence[str | Path], options: DecodingOptions | None = None, *,
                   batch_size: int = BATCH_SIZE, **knobs: Any) -> list[str] | list[list[str]]:
        """The transcript of each WAV file, in order.

        options, or keyword arguments named as its fields (`strategy="beam", beam_size=5`), say how to decode
        (`seq2seq.decoding.DecodingOptions`). Returns one string per file, or, with n_best or num_samples above 1,
        a list of that many per file (best first for beam search).
        """
        if isinstance(paths, str | Path):
            raise TypeError("transcribe() takes a list of paths; wrap a single file in a list")
        options = with_knobs(options, knobs)
        frames = [load_frames(path, self.config.data.audio) for path in paths]
        texts = [[self.text(hypothesis) for hypothesis in found]
                 for found in self.decode_frames(frames, options, batch_size)]
        return [found[0] for found in texts] if options.per_input == 1 else texts

    def text(self, hypothesis: Hypothesis) -> str:
        """The transcript a hypothesis spells."""
        return self.tokenizer.detokenize(self.vocab.decode(hypothesis.tokens))

    def decode_frames(self, frames: Sequence[Array], options: DecodingOptions | None = None,
                      batch_size: int = BATCH_SIZE) -> list[list[Hypothesis]]:
        """The hypotheses for each utterance's frames (T, F), in order; utterances of similar lengths share a batch.
        Without options.max_length, a transcript stops at twice the longest training transcript."""
        options = options or DecodingOptions()
        xp = self._arrays
        generator, cap = xp.random_source(options.seed), output_cap(self.target_lengths)
        results: list[list[Hypothesis]] = [[] for _ in frames]
        for chunk in length_batches([len(utterance) for utterance in frames], batch_size):
            src, src_lengths = xp.padded([frames[index] for index in chunk], 0.0, xp.float32)  # (B, S, F), (B,)
            with self._computing():
                found = decode(self.model, src, src_lengths, options, generator, cap)
            for index, hypotheses in zip(chunk, found, strict=True):
                results[index] = hypotheses
        return results

    def best_transcripts(self, frames: Sequence[Array], options: DecodingOptions | None = None,
                         batch_size: int = BATCH_SIZE) -> list[str]:
        """The first (with beam search the best) transcript of each utterance's frames (T, F)."""
        return [self.text(found[0]) for found in self.decode_frames(frames, options, batch_size)]

    def evaluate(self, pairs: Sequence[Pair], batch_size: int = BATCH_SIZE,
                 options: DecodingOptions | None = None) -> dict[str, float]:
        """CER, WER and exact match (percent) of the transcripts of pairs (WAV path, reference transcript, and the
        list line that an unreadable file's error names)."""
        frames = [load_frames(pair.src, self.config.data.audio, pair.origin) for pair in pairs]
        transcripts = self.best_transcripts(frames, options, batch_size)
        check_outputs_vary([pair.src for pair in pairs], transcripts)
        return score_transcripts(transcripts, [pair.tgt for pair in pairs])


def score_transcripts(transcripts: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Character and word error rates and exact match, in percent."""
    grouped = [[reference] for reference in references]
    from seq2seq.evaluation import metrics  # sacrebleu and rapidfuzz, only when scoring

    return {"cer": metrics.cer(transcripts, grouped), "wer": metrics.wer(transcripts, grouped),
            "exact_match": metrics.exact_match(transcripts, grouped)}
