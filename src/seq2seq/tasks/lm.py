"""The text-generation API: train a LanguageModel on text, load it, generate text with temperature, score text."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from seq2seq.config import Config, refuse_other_tasks_options
from seq2seq.data.lm_text import scored_stream, stream_rows, stream_targets, window_reads
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.preparation import prepare_text
from seq2seq.data.text import read_entries
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import PAD_ID, Vocab
from seq2seq.decoding.options import GENERATION_DEFAULTS
from seq2seq.errors import ConfigError, DataError
from seq2seq.evaluation.adaptation import Adaptation
from seq2seq.evaluation.dynamic import adapt
from seq2seq.evaluation.text_scores import text_scores
from seq2seq.models import architectures
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.objectives import language_model_losses
from seq2seq.models.outputs import check_cutoffs
from seq2seq.tasks import registry
from seq2seq.tasks.generating import TextGenerating
from seq2seq.tasks.on_device import OnDevice
from seq2seq.tasks.registry import Task, register
from seq2seq.training.board import Sample, Sampler
from seq2seq.training.trainer import Trainer, run_training, start_run
from seq2seq.utils.device import mixed_precision


@dataclass
class TextGenerator(OnDevice, TextGenerating):
    """A trained LanguageModel with its tokenizer and vocabulary: prompts in, text out."""

    model: LanguageModel
    config: Config
    tokenizer: Tokenizer
    vocab: Vocab
    device: torch.device
    precision: str = "fp32"  # autocast while generating and evaluating (fp32, bf16, fp16, auto)

    def read(self, source: str | Path) -> list[str]:
        """Entries of a text file or folder, split the way the training text was (`data.entries`)."""
        return read_entries(source, self.config.data.entries, self.config.data.entry_delimiter)

    def evaluate(self, entries: Sequence[str], adaptation: Adaptation | None = None) -> dict[str, float]:
        """Held-out cross-entropy (nats per token), perplexity and bits per character of entries.

        The text is read as in training, `<s> entry </s>` after each other, cut into at most data.batch_size
        contiguous parts that are read window by window with the state carried over, so each token is predicted
        from all the text before it in its part (a Transformer, which carries no state, from at least half a window
        of it: `stream_nll`). Predicting `<s>` (it always follows `</s>`) is not counted;
        `</s>` is, as the newline or delimiter that ends an entry, so that for character tokens bpc equals
        cross_entropy / ln 2.

        With an adaptation (dynamic evaluation), the text is read as one part in fp32, and the model learns from
        each segment after scoring it (`evaluation.dynamic`); this generator's weights stay as they are.
        """
        stream = scored_stream(entries, self.tokenizer, self.vocab)
        self.model.eval()
        if adaptation is not None:
            _, nll, tokens = adapt(self.model, stream, adaptation)
            return text_scores(nll, tokens, entries)
        with mixed_precision(self.precision, self.device):
            nll, tokens = stream_nll(self.model, stream, self.config.data.batch_size, self.config.data.window)
        return text_scores(nll, tokens, entries)

    def adapted_to(self, text: str, adaptation: Adaptation) -> TextGenerator:
        """A generator whose model read text as dynamic evaluation reads it, one update per segment (the prompt of
        `generate --adapt`); this one is unchanged."""
        stream = scored_stream([text], self.tokenizer, self.vocab)
        if len(stream) < 2:
            return self
        return replace(self, model=adapt(self.model, stream, adaptation)[0])


def stream_nll(model: LanguageModel, stream: Sequence[int], parts: int, window: int) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the stream's tokens after the first, and how many were counted.

    The stream is cut into at most `parts` contiguous rows (B, L), read window by window as `window_reads` says
    (the state carried over where the model carries it); targets `<s>` are not counted.
    """
    rows = stream_rows(stream, parts, window)  # (B, L + 1)
    device = next(model.parameters()).device
    inputs, targets = (torch.from_numpy(ids).to(device) for ids in (rows[:, :-1], stream_targets(rows)))  # (B, L)
    carried = getattr(model, "carries_state", True)
    total, count, hidden = 0.0, 0, None
    with torch.no_grad():
        for begin, start, end in window_reads(inputs.size(1), window, carried):
            features, hidden = model.read(inputs[:, begin:end], hidden if carried else None)  # (B, W, H)
            chunk = targets[:, start:end]
            mask = chunk != PAD_ID
            total += float(model.output_loss(features[:, start - begin:][mask], chunk[mask]))
            count += int(mask.sum())
    return total, count


def load_generator(path: str | Path, device: str = "auto", precision: str | None = None) -> TextGenerator:
    """Load a trained language model from its run directory (best checkpoint) or a checkpoint file; precision
    None is fp32 (bf16 changes which samples are drawn)."""
    return registry.load(path, TASK, device, precision)  # type: ignore[no-any-return]


def build_model(metadata: ModelMetadata) -> nn.Module:
    """The untrained language model of model.arch's kind of a checkpoint (or of prepared text)."""
    return architectures.language_model(metadata.config.model, len(metadata.vocabs[0]))


def generator_of(model: nn.Module, metadata: ModelMetadata, device: torch.device, precision: str | None = None
                 ) -> TextGenerator:
    """model with the tokenizer and vocabulary of metadata (precision None: fp32)."""
    return TextGenerator(model, metadata.config, metadata.tokenizers[0], metadata.vocabs[0], device,  # type: ignore[arg-type]
                         precision or "fp32")


def train_language_model(config: Config, train_entries: Sequence[str], dev_entries: Sequence[str] = (),
                         out_dir: str | Path = "runs/lm", resume: bool = False) -> TextGenerator:
    """Build a tokenizer, vocabulary and LanguageModel from the training text, fit it, and return the best model.

    The text is prepared by `preparation.prepare_text`. With resume, the run in out_dir continues (config may differ
    from its config only in train.*).
    """
    started = time.monotonic()
    config = replace(config, task="lm")
    check_config(config)
    out = Path(out_dir)
    saved = start_run(config, out, resume)
    prepared = prepare_text(config, train_entries, dev_entries, saved.metadata if saved else None)
    torch.manual_seed(config.train.seed)
    model = build_model(prepared.metadata)
    trainer = Trainer(model, language_model_losses(config.train), config, prepared.examples,
                      prepared.dev_examples, out, prepared.metadata.to_dict(),
                      sampler=training_samples(prepared.metadata))
    run_training(trainer, saved, started)
    return load_generator(out, config.train.device)


SAMPLE_TOKENS = 60  # the most tokens of a sample drawn at an evaluation


def training_samples(metadata: ModelMetadata) -> Sampler | None:
    """The Trainer's sampler: a text of up to SAMPLE_TOKENS tokens at each of train.sample_temperatures, drawn with a
    generator of its own seeded by train.seed (the training's random stream is left as it was); None without any."""
    config = metadata.config
    temperatures = config.train.sample_temperatures
    if not temperatures:
        return None

    def draw(model: nn.Module) -> list[Sample]:
        generator = generator_of(model, metadata, next(model.parameters()).device)
        samples = []
        for temperature in temperatures:  # 0 is greedy, which draws nothing and takes no seed
            seed = {"seed": config.train.seed} if temperature else {}
            text = generator.generate(temperature=temperature, max_length=SAMPLE_TOKENS, stop_at_end=True, **seed)
            samples.append(Sample(f"temperature {temperature:g}", text[0]))
        return samples

    return draw


def check_config(config: Config) -> None:
    """A language model reads its own text: the knobs about a source side or output scoring do not apply."""
    refuse_other_tasks_options(config)
    if config.data.window < 1:
        raise ConfigError("data.window must be at least 1")
    if config.data.entries == "delimiter" and not config.data.entry_delimiter:
        raise ConfigError("data.entry_delimiter must not be empty with data.entries=delimiter")
    if config.train.teacher_forcing < 1.0:
        raise ConfigError("train.teacher_forcing does not apply to task lm (a language model reads the real text)")
    if config.train.metric != "loss":
        raise ConfigError(f"train.metric={config.train.metric} does not apply to task lm (use loss)")
    if config.model.copy or config.model.coverage or config.model.share_embeddings:
        raise ConfigError("model.copy, model.coverage and model.share_embeddings do not apply to task lm (a language "
                          "model has no source)")
    if config.model.adaptive_softmax:
        check_cutoffs(config.model.adaptive_softmax, config.model.hidden_size)
        if config.model.tie_embeddings or config.train.label_smoothing:
            raise ConfigError("model.adaptive_softmax leaves no full output matrix to tie (model.tie_embeddings) and "
                              "no full distribution to smooth (train.label_smoothing): turn them off")


def as_entry(value: object) -> str:
    """value as a text entry to train on (DataError unless it is a string)."""
    if not isinstance(value, str):
        raise DataError(f"a language model trains on strings of text, not {value!r:.80}")
    return value


TASK = register(Task(
    name="lm", kind="a language model", command="generate", facade=TextGenerator, sides=(1, 1),
    read=lambda config, spec: read_entries(spec, config.data.entries, config.data.entry_delimiter), item=as_entry,
    train=train_language_model, build=build_model, facade_of=generator_of, check=check_config,
    columns=lambda config: (("perplexity", "perplexity"), ("bpc", "bpc")), use=None, routes=("/v1/generate",),
    export=lambda config: "generator", decoding=GENERATION_DEFAULTS))
