"""Decoding options and the search rules every runtime shares, free of any tensor library (PyTorch and ONNX alike)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from seq2seq.data.vocab import BOS_ID, PAD_ID, UNK_ID
from seq2seq.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample", "ctc")
DEFAULT_BEAM_SIZE = 5
BATCH_SIZE = 64  # inputs decoded together by default
RELATIVE_MAX_LENGTH = (1.5, 20)  # (a, b): without max_length, a source of S tokens allows ceil(a * S) + b
KNOB_STRATEGY = {"beam_size": "beam", "length_penalty": "beam", "n_best": "beam", "temperature": "sample",
                 "top_k": "sample", "top_p": "sample", "num_samples": "sample", "seed": "sample"}

T = TypeVar("T")


def _knob(default: Any, help: str, metavar: str | None = None) -> Any:
    """A DecodingOptions field; its help text and metavar are those of the command-line flag made from it."""
    return field(default=default, metadata={"help": help, "metavar": metavar})


def output_cap(target_lengths: dict[str, float]) -> int:
    """Without max_length, outputs stop at twice the longest training target (</s> included), so that a model which
    never ends can not run for 1.5 x a long source; 0 (no cap) when the checkpoint does not record target lengths."""
    return 2 * int(target_lengths["max"]) + 1 if target_lengths else 0


def given(value: T | None, default: T) -> T:
    """value, or default where it is None."""
    return default if value is None else value


@dataclass(frozen=True)
class DecodingOptions:
    """How outputs are produced: the one home of the decoding knobs (the Python API, the CLI flags and the server's
    requests are made from these fields). Knobs of one strategy left at None take the default their help gives;
    setting one for another strategy is a ConfigError.

    Lengths count output tokens, </s> included. A hypothesis that reaches max_length stops there without </s>.
    """

    strategy: str = _knob("greedy", "how outputs are chosen: greedy, beam or sample; ctc: a speech model's CTC head "
                                    "alone (best label per frame)")
    max_length: int = _knob(0, "most output tokens, </s> included (0: 1.5 x source length + 20)", "N")
    min_length: int = _knob(0, "fewest output tokens before </s>", "N")
    no_repeat_ngram_size: int = _knob(0, "no N-gram twice in an output (0: off)", "N")
    ban_unk: bool = _knob(False, "never output <unk>")
    beam_size: int | None = _knob(None, f"live hypotheses per input (default {DEFAULT_BEAM_SIZE})", "K")
    length_penalty: float | None = _knob(None, "rank by log p / ((5 + length) / 6) ** A (default 1; 0: by log p)",
                                         "A")
    n_best: int | None = _knob(None, "outputs per input, best first (default 1, at most beam_size)", "N")
    temperature: float | None = _knob(None, "divide the logits by T (default 1)", "T")
    top_k: int | None = _knob(None, "draw from the K most likely tokens only", "K")
    top_p: float | None = _knob(None, "draw from the nucleus of probability P only", "P")
    num_samples: int | None = _knob(None, "outputs per input (default 1)", "N")
    seed: int | None = _knob(None, "seed of the random draws: same seed, same outputs (default: torch's global "
                                   "generator)")
    ctc_weight: float | None = _knob(None, "greedy and beam: weight of the CTC head's prefix scores joined to the "
                                           "decoder's (default: the model's model.ctc_weight; 0: the decoder alone)",
                                     "W")

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown decoding strategy {self.strategy!r} (choose {', '.join(STRATEGIES)})")
        for name, owner in KNOB_STRATEGY.items():
            if getattr(self, name) is not None and owner != self.strategy:
                raise ConfigError(f"{name} applies only to strategy '{owner}', not '{self.strategy}'")
        for valid, message in self._rules():
            if not valid:
                raise ConfigError(message)

    def _rules(self) -> list[tuple[bool, str]]:
        beam_size = given(self.beam_size, DEFAULT_BEAM_SIZE)
        return [(self.max_length >= 0, f"max_length must be >= 0 (0: relative to the source), not {self.max_length}"),
                (self.min_length >= 0, f"min_length must be >= 0, not {self.min_length}"),
                (not self.max_length or self.min_length < self.max_length,
                 f"min_length={self.min_length} leaves no room for </s> within max_length={self.max_length}"),
                (self.no_repeat_ngram_size >= 0, f"no_repeat_ngram_size must be >= 0, not {self.no_repeat_ngram_size}"),
                (beam_size >= 1, f"beam_size must be >= 1, not {beam_size}"),
                (1 <= given(self.n_best, 1) <= beam_size,
                 f"n_best must be between 1 and beam_size={beam_size}, not {self.n_best}"),
                (given(self.temperature, 1.0) > 0, f"temperature must be > 0, not {self.temperature}"),
                (given(self.top_k, 1) >= 1, f"top_k must be >= 1, not {self.top_k}"),
                (0 < given(self.top_p, 1.0) <= 1, f"top_p must be in (0, 1], not {self.top_p}"),
                (given(self.num_samples, 1) >= 1, f"num_samples must be >= 1, not {self.num_samples}"),
                (self.strategy != "ctc" or not (self.max_length or self.min_length or self.no_repeat_ngram_size
                                                or self.ban_unk),
                 "strategy ctc reads the best label of each frame: max_length, min_length, no_repeat_ngram_size and "
                 "ban_unk do not apply"),
                (self.ctc_weight is None or self.strategy in ("greedy", "beam"),
                 f"ctc_weight applies only to strategies greedy and beam, not '{self.strategy}'"),
                (0 <= given(self.ctc_weight, 0.0) <= 1, f"ctc_weight must be in [0, 1], not {self.ctc_weight}")]

    @property
    def per_input(self) -> int:
        """Hypotheses returned for each input: n_best for beam, num_samples for sample, 1 for greedy."""
        return given(self.n_best, 1) if self.strategy == "beam" else given(self.num_samples, 1)


def with_knobs(options: DecodingOptions | None, knobs: dict[str, Any]) -> DecodingOptions:
    """options (default: greedy) with the given knobs, named as DecodingOptions' fields, put in; an unknown name is a
    ConfigError naming it."""
    known = [f.name for f in fields(DecodingOptions)]
    unknown = sorted(set(knobs) - set(known))
    if unknown:
        raise ConfigError(f"unknown decoding option {unknown[0]!r} (known: {', '.join(known)})")
    return replace(options or DecodingOptions(), **knobs)


GENERATION_DEFAULTS = DecodingOptions("sample", max_length=200)


def generation_options(options: DecodingOptions | None, knobs: dict[str, Any]) -> DecodingOptions:
    """options (default GENERATION_DEFAULTS) with knobs put in; `num` stands for num_samples, and temperature 0 for
    greedy (one text: num_samples, seed, top_k and top_p do not apply)."""
    knobs = dict(knobs)
    if "num" in knobs:
        knobs["num_samples"] = knobs.pop("num")
    if knobs.get("temperature") == 0:
        del knobs["temperature"]
        if knobs.get("num_samples") == 1:
            del knobs["num_samples"]
        knobs["strategy"] = "greedy"
    options = with_knobs(options or GENERATION_DEFAULTS, knobs)
    if options.max_length < 1:
        raise ConfigError(f"max_length must be at least 1, not {options.max_length}")
    if options.strategy == "beam":
        raise ConfigError("strategy beam does not apply to generating text (use greedy or sample)")
    return options


@dataclass
class Hypothesis:
    """One output: token ids (</s> last unless cut at the maximum length), their total log-probability under the
    model, the log-probability of each token (T,), and attention weights (T, S) over the sentence's S source tokens
    when the model attends (a torch tensor, or a numpy array from `seq2seq.onnx`)."""

    tokens: list[int]
    log_prob: float
    token_log_probs: list[float]
    attention: Any


ProcessorSpec = tuple[str, dict[str, Any]]
"""A logits processor by name (a function of `seq2seq.decoding.search`) and its keyword values."""


def processor_specs(options: DecodingOptions) -> list[ProcessorSpec]:
    """The processors the options ask for, masks first; <pad> and <s> are never produced."""
    banned = (PAD_ID, BOS_ID, UNK_ID) if options.ban_unk else (PAD_ID, BOS_ID)
    specs: list[ProcessorSpec] = [("ban_tokens", {"token_ids": banned})]
    if options.min_length:
        specs.append(("block_eos_before", {"min_length": options.min_length}))
    if options.no_repeat_ngram_size:
        specs.append(("block_repeated_ngrams", {"size": options.no_repeat_ngram_size}))
    if options.temperature is not None:
        specs.append(("scale_temperature", {"temperature": options.temperature}))
    if options.top_k is not None:
        specs.append(("keep_top_k", {"k": options.top_k}))
    if options.top_p is not None and options.top_p < 1:
        specs.append(("keep_top_p", {"p": options.top_p}))
    return specs
