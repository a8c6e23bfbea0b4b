"""A model exported by `seq2seq export`, run on ONNX Runtime through the encode / init_state / step interface."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime

from seq2seq.decoding.numpy_arrays import NumpyArrays
from seq2seq.errors import CheckpointError
from seq2seq.models.state import ROWS, DecoderState
from seq2seq.onnx.graphs import (
    CTC,
    ENCODER,
    ENSEMBLE_FORMAT,
    EXTENSION,
    FORMAT,
    LOGITS,
    MANIFEST,
    NEXT,
    STEP,
    TOKENS,
    Array,
    Arrays,
    state_axes,
)
from seq2seq.tasks.facade import Facade

if TYPE_CHECKING:
    from seq2seq.config import Config
    from seq2seq.data.metadata import ModelMetadata
    from seq2seq.data.tokenizers import Tokenizer
    from seq2seq.data.vocab import Vocab


@dataclass(frozen=True)
class Memory(Arrays):
    """The encoder's tensors the step reads (and a speech model's CTC log-probabilities); `initial` holds the decoder
    state before the first step (the encoder graph computes both) until rows are reordered."""

    initial: DecoderState | None = None

    @property
    def mask(self) -> Array:
        """(B, S) True at the real positions of the encoder's outputs."""
        return self.values["mask"]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    """The export's manifest; a missing, malformed or foreign one is a CheckpointError."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: not an exported model (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable manifest ({error})") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found not in (FORMAT, ENSEMBLE_FORMAT):
        raise CheckpointError(f"{path}: unsupported export format {found!r} (expected {FORMAT} or "
                              f"{ENSEMBLE_FORMAT})")
    return manifest


def open_session(path: Path, expected_sha256: str, threads: int = 0) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on one graph of the export, checked against the manifest's hash."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing graph")
    if file_sha256(path) != expected_sha256:
        raise CheckpointError(f"{path}: corrupted or changed (its SHA-256 differs from the manifest's)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
        raise CheckpointError(f"{path}: not a loadable ONNX graph ({str(error).splitlines()[0]})") from None


class Exported(Facade):
    """What the facades of exported models read of the model description they were exported with (`metadata`), and
    the arrays they decode on (numpy); it comes first among a facade's bases, before the front end it completes."""

    metadata: ModelMetadata

    @property
    def _arrays(self) -> NumpyArrays:
        return NumpyArrays()

    @property
    def target_lengths(self) -> dict[str, float]:
        """The training targets' length statistics, in tokens (`options.output_cap`)."""
        return self.metadata.target_lengths

    @property
    def config(self) -> Config:
        return self.metadata.config

    @property
    def tokenizers(self) -> tuple[Tokenizer, ...]:
        """As the PyTorch facade's: (source, target) of a translation model, (text,) of the others."""
        return self.metadata.tokenizers

    @property
    def tokenizer(self) -> Tokenizer:
        """The first of tokenizers (a language model's or classifier's only one)."""
        return self.metadata.tokenizers[0]

    @property
    def vocabs(self) -> tuple[Vocab, ...]:
        """As the PyTorch facade's: (source, target), (text, labels) of a classifier, (text,) of a language model."""
        return self.metadata.vocabs


class OnnxModel:
    """The two graphs of an export: encoder (src, src_lengths) -> memory and initial state; step (tokens, state,
    memory) -> (logits, state). A copying model's logits are log-probabilities over the vocabulary and the batch's
    extension, as `Seq2Seq.step`. A language model's encoder graph reads `<s> prompt` into the state and also
    returns the logits of the first new token, which its first step returns without reading a token, as
    `LanguageModel.step`. A speech model's encoder graph reads frames (B, S, F) and, with a CTC head, also returns
    its log-probabilities (`decoding.ctc` reads them through `ctc_log_probs`)."""

    def __init__(self, directory: Path, manifest: dict[str, Any], threads: int = 0) -> None:
        graphs = manifest["graphs"]
        self.encoder = open_session(directory / ENCODER, graphs[ENCODER], threads)
        self.decoder = open_session(directory / STEP, graphs[STEP], threads)
        self.state_names: list[str] = manifest["layout"]["state"]
        self.state_axes = state_axes(manifest["layout"])
        self.step_inputs = [node.name for node in self.decoder.get_inputs()]
        self.target_vocab_size: int = manifest["layout"]["target_vocab_size"]
        self.copy: bool = manifest["layout"]["copy"]
        self.prompt: bool = manifest["layout"].get("prompt", False)
        self.ctc_weight: float = manifest["layout"].get("ctc_weight", 0.0)

    def encode(self, src: Array, src_lengths: Array) -> Memory:
        """Run the encoder over src (B, S) (int64 ids, padded with <pad>; a speech model's float32 frames (B, S, F),
        padded with zeros) of lengths (B,)."""
        names = [node.name for node in self.encoder.get_outputs()]
        feeds = {"src": src if src.ndim == 3 else src.astype(np.int64), "src_lengths": src_lengths.astype(np.int64)}
        reads = [node.name for node in self.encoder.get_inputs()]  # a graph that never reads the lengths lacks them
        values = dict(zip(names, self.encoder.run(None, {name: feeds[name] for name in reads}), strict=True))
        memory = {name: values[name] for name in [*self.step_inputs, CTC]
                  if name in values and name not in self.state_names}
        if self.copy:  # the output distribution covers the vocabulary and the ids the batch's sources extend it with
            width = max(self.target_vocab_size, int(src.max()) + 1)
            memory[EXTENSION] = np.zeros(width - self.target_vocab_size, dtype=np.float32)
        axes = {**self.state_axes, **({LOGITS: ROWS} if self.prompt else {})}
        return Memory(memory, DecoderState({name: values[name] for name in axes}, axes))

    def ctc_log_probs(self, memory: Memory) -> Array:
        """A speech model's CTC log-probabilities (B, S, V) of the frames in memory (as `SpeechSeq2Seq`'s)."""
        return memory.values[CTC]

    def init_state(self, memory: Memory) -> DecoderState:
        """The decoder state before the first step (from the encoder graph)."""
        if memory.initial is None:
            raise ValueError("init_state needs the memory encode() returned, before any reordering")
        return memory.initial

    def step(self, tokens: Array, state: DecoderState, memory: Memory) -> tuple[Array, DecoderState]:
        """Feed one token per row (B,); returns logits (B, V) and the new state."""
        if LOGITS in state:  # a language model's first step: the prompt's logits, no token read
            return state[LOGITS], DecoderState({name: state[name] for name in self.state_names}, self.state_axes)
        feeds = {TOKENS: tokens.astype(np.int64), **state.tensors, **memory.values}
        outputs = self.decoder.run([LOGITS, *(NEXT + name for name in self.state_names)],
                                   {name: feeds[name] for name in self.step_inputs})
        return outputs[0], DecoderState(dict(zip(self.state_names, outputs[1:], strict=True)), self.state_axes)
