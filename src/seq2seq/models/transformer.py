"""The Transformer kind (`model.arch=transformer`, Vaswani et al., 2017): pre-norm encoder and decoder layers whose
attention runs through PyTorch's fused `scaled_dot_product_attention`, and a decoder-only language model.

The decoder's state is its key/value cache, one tensor of keys and one of values (B, L, heads, T, head size) that
grow by one position per step, the position of the next token (B,), and the shown layer's cross-attention weights
(B, S): beam search reorders the cache like any state, and export makes it graph state. The encoder's memory keeps
every decoder layer's cross-attention keys and values, projected once per sentence (`memory_keys`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

from seq2seq.config import ModelConfig
from seq2seq.data.vocab import PAD_ID
from seq2seq.errors import ConfigError
from seq2seq.models.architectures import Architecture, register
from seq2seq.models.decoder import Memory
from seq2seq.models.language_model import PROMPT_OUTPUT
from seq2seq.models.outputs import output_layer
from seq2seq.models.state import ROWS, SOURCE_ROWS, Axes, DecoderState, declared

STEPS = "steps"  # the cache's growing axis: the positions decoded so far
CACHE = Axes(0, {3: STEPS})  # (B, L, heads, T, head size)
MASK = Axes(0, {1: STEPS})  # (B, T): which cached positions a language model's steps attend to
POSITION = "position"
WARMUP_STEPS = 400  # updates: a transformer's default warm-up (its early Adam updates diverge without one)


class Positions(nn.Module):
    """Position vectors (..., H) of positions (...): fixed sinusoids, or learned embeddings (positions from
    max_positions on share the last one)."""

    def __init__(self, kind: str, size: int, max_positions: int) -> None:
        super().__init__()
        self.learned = nn.Embedding(max_positions, size) if kind == "learned" else None
        frequencies = torch.exp(torch.arange(0, size, 2).float() * (-math.log(10000.0) / size))  # (H / 2,)
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, positions: Tensor) -> Tensor:
        if self.learned is not None:
            return self.learned(positions.clamp(max=self.learned.num_embeddings - 1))  # type: ignore[no-any-return]
        angles = positions.unsqueeze(-1).float() * self.frequencies  # (..., H / 2)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class Embedder(nn.Module):
    """Token ids (B, T) at positions (B, T) -> scaled embeddings plus positions, with dropout (B, T, H)."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        size = config.hidden_size
        self.tokens = nn.Embedding(vocab_size, size, padding_idx=PAD_ID)
        nn.init.normal_(self.tokens.weight, std=size ** -0.5)  # times sqrt(H) below: unit variance
        with torch.no_grad():
            self.tokens.weight[PAD_ID].zero_()
        self.positions = Positions(config.positions, size, config.max_positions)
        self.scale = math.sqrt(size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        return self.dropout(self.tokens(tokens) * self.scale + self.positions(positions))

    def tie(self, generator: nn.Linear) -> None:
        """Make generator's weights (V, H) these token embeddings (`model.tie_embeddings`): one matrix to learn."""
        generator.weight = self.tokens.weight


class MultiHeadAttention(nn.Module):
    """Queries from one sequence attend over keys and values of another (or the same), head by head."""

    def __init__(self, size: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_size, self.dropout = heads, size // heads, dropout
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size, bias=False)  # a key bias shifts every score alike: softmax ignores it
        self.value = nn.Linear(size, size)
        self.output = nn.Linear(size, size)

    def split(self, vectors: Tensor) -> Tensor:
        """(B, T, H) -> (B, heads, T, H / heads)."""
        return vectors.view(vectors.size(0), vectors.size(1), self.heads, self.head_size).transpose(1, 2)

    def keys_values(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """The keys and values (B, heads, S, H / heads) of inputs (B, S, H)."""
        return self.split(self.key(inputs)), self.split(self.value(inputs))

    def forward(self, inputs: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None,
                causal: bool = False) -> Tensor:
        """inputs (B, T, H) attending over keys and values (B, heads, S, H / heads) where mask (B, 1, 1, S) is
        True (and, causal, not ahead of themselves) -> (B, T, H)."""
        attended = functional.scaled_dot_product_attention(
            self.split(self.query(inputs)), keys, values, attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0, is_causal=causal)  # (B, heads, T, H / heads)
        return self.output(attended.transpose(1, 2).flatten(2))

    def weights(self, inputs: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """The attention weights of inputs (B, 1, H) over keys (B, heads, S, H / heads), averaged over the heads
        (B, S): what a heatmap shows (the attended vectors come from `forward`)."""
        scores = self.split(self.query(inputs)) @ keys.transpose(-1, -2) / math.sqrt(self.head_size)  # (B, h, 1, S)
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores.float(), dim=-1).mean(dim=1).squeeze(1)


class FeedForward(nn.Sequential):
    """Position-wise: H -> inner size -> ReLU -> dropout -> H."""

    def __init__(self, size: int, inner: int, dropout: float) -> None:
        super().__init__(nn.Linear(size, inner), nn.ReLU(), nn.Dropout(dropout), nn.Linear(inner, size))


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each as x + dropout(block(norm(x)))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        size = config.hidden_size
        self.attention_norm, self.feed_forward_norm = nn.LayerNorm(size), nn.LayerNorm(size)
        self.attention = MultiHeadAttention(size, config.heads, config.dropout)
        self.feed_forward = FeedForward(size, config.feedforward_size, config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, inputs: Tensor, mask: Tensor | None, causal: bool = False,
                past: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """inputs (B, T, H) after the cached keys and values past (B, heads, P, H / heads), attending where mask
        (B, 1, T or 1, P + T) is True (and, causal, not ahead of themselves) -> outputs (B, T, H), and the keys and
        values of every position so far."""
        normed = self.attention_norm(inputs)
        keys, values = extended(past, *self.attention.keys_values(normed))
        inputs = inputs + self.dropout(self.attention(normed, keys, values, mask, causal))
        return inputs + self.dropout(self.feed_forward(self.feed_forward_norm(inputs))), (keys, values)


def extended(past: tuple[Tensor, Tensor] | None, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """The cached keys and values past (B, heads, P, H / heads) followed by new ones (B, heads, T, H / heads)."""
    if past is None:
        return keys, values
    return torch.cat([past[0], keys], dim=2), torch.cat([past[1], values], dim=2)


class TransformerEncoder(nn.Module):
    """Token ids (B, S) -> outputs (B, S, H) of a stack of `EncoderLayer`s and a final norm; no final state."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedder = Embedder(config, vocab_size)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        positions = torch.arange(src.size(1), device=src.device).expand_as(src)  # (B, S)
        mask = (positions < src_lengths.to(src.device).unsqueeze(1))[:, None, None, :]  # (B, 1, 1, S)
        outputs = self.embedder(src, positions)
        for layer in self.layers:
            outputs = layer(outputs, mask)[0]
        return self.norm(outputs), ()


class DecoderLayer(nn.Module):
    """Masked self-attention over the positions so far, attention over the source, feed-forward (pre-norm)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        size = config.hidden_size
        self.self_norm, self.cross_norm, self.feed_forward_norm = (nn.LayerNorm(size) for _ in range(3))
        self.self_attention = MultiHeadAttention(size, config.heads, config.dropout)
        self.cross_attention = MultiHeadAttention(size, config.heads, config.dropout)
        self.feed_forward = FeedForward(size, config.feedforward_size, config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, inputs: Tensor, past: tuple[Tensor, Tensor] | None, cross: tuple[Tensor, Tensor],
                mask: Tensor, show: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor | None]:
        """inputs (B, T, H) after the cached keys and values past (B, heads, P, H / heads) (None: T is the whole
        target, attended causally), attending over the source's cross keys and values where mask (B, 1, 1, S).
        Returns outputs (B, T, H), the keys and values of every position so far, and with show the last position's
        cross-attention weights (B, S)."""
        normed = self.self_norm(inputs)
        keys, values = extended(past, *self.self_attention.keys_values(normed))
        inputs = inputs + self.dropout(self.self_attention(normed, keys, values, causal=past is None))
        normed = self.cross_norm(inputs)
        weights = self.cross_attention.weights(normed[:, -1:], cross[0], mask) if show else None
        inputs = inputs + self.dropout(self.cross_attention(normed, *cross, mask))
        return inputs + self.dropout(self.feed_forward(self.feed_forward_norm(inputs))), (keys, values), weights


class TransformerDecoder(nn.Module):
    """A stack of `DecoderLayer`s and a final norm: features (B, T, H) for the output projection."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedder = Embedder(config, vocab_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.hidden_size)
        self.shown = max(0, config.num_layers - 1 - config.attention_layer)  # the layer whose attention is shown
        self.heads, self.head_size = config.heads, config.hidden_size // config.heads

    def tie(self, generator: nn.Linear) -> None:
        """Give the output layer the target token embeddings (`model.tie_embeddings`)."""
        self.embedder.tie(generator)

    def share(self, encoder: TransformerEncoder) -> None:
        """Read target tokens with the encoder's token embeddings (`model.share_embeddings`: one vocabulary)."""
        self.embedder.tokens = encoder.embedder.tokens

    @staticmethod
    def state_axes(config: ModelConfig) -> dict[str, Axes]:
        """The cache of keys and values (B, L, heads, T, H / heads), the next position (B,), the shown layer's
        cross-attention weights (B, S)."""
        return {"self_keys": CACHE, "self_values": CACHE, POSITION: ROWS, "attention": SOURCE_ROWS}

    def memory_keys(self, outputs: Tensor) -> Tensor:
        """Every layer's cross-attention keys and values of the encoder outputs (B, S, H), side by side
        (B, S, 2 L H)."""
        parts = []
        for layer in self.layers:
            keys, values = layer.cross_attention.keys_values(outputs)  # (B, heads, S, H / heads)
            parts += [keys.transpose(1, 2).flatten(2), values.transpose(1, 2).flatten(2)]
        return torch.cat(parts, dim=-1)

    def cross(self, memory: Memory) -> list[tuple[Tensor, Tensor]]:
        """Each layer's cross keys and values (B, heads, S, H / heads) from the memory's keys (B, S, 2 L H)."""
        batch, length = memory.keys.shape[:2]
        parts = memory.keys.view(batch, length, 2 * len(self.layers), self.heads, self.head_size)
        parts = parts.permute(2, 0, 3, 1, 4)  # (2 L, B, heads, S, H / heads)
        return [(parts[2 * index], parts[2 * index + 1]) for index in range(len(self.layers))]

    def init_state(self, memory: Memory) -> DecoderState:
        batch = memory.keys.size(0)
        empty = memory.keys.new_zeros(batch, len(self.layers), self.heads, 0, self.head_size)
        position = torch.zeros(batch, dtype=torch.long, device=memory.keys.device)
        return self._state(empty, empty, position, torch.zeros_like(memory.mask, dtype=torch.float))

    @staticmethod
    def _state(keys: Tensor, values: Tensor, position: Tensor, attention: Tensor) -> DecoderState:
        return declared({"self_keys": (keys, CACHE), "self_values": (values, CACHE), POSITION: (position, ROWS),
                         "attention": (attention, SOURCE_ROWS)})

    def forward(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Teacher-forced run over tgt_in (B, T) from the state `init_state` made -> features (B, T, H) and the
        state after the last position."""
        positions = torch.arange(tgt_in.size(1), device=tgt_in.device).expand_as(tgt_in)  # (B, T)
        return self._run(self.embedder(tgt_in, positions), None, memory, state[POSITION] + tgt_in.size(1))

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """One token per row (B,) -> features (B, H), reading and extending the cache."""
        position = state[POSITION]
        inputs = self.embedder(tokens.unsqueeze(1), position.unsqueeze(1))  # (B, 1, H)
        past = list(zip(state["self_keys"].unbind(1), state["self_values"].unbind(1), strict=True))
        features, state = self._run(inputs, past, memory, position + 1)
        return features.squeeze(1), state

    def _run(self, inputs: Tensor, past: list[tuple[Tensor, Tensor]] | None, memory: Memory,
             position: Tensor) -> tuple[Tensor, DecoderState]:
        """The layers over inputs (B, T, H) after the cached positions past (None: none, causal) -> features
        (B, T, H) and the state: the cache, the next position and the shown layer's weights of the last position."""
        mask = memory.mask[:, None, None, :]  # (B, 1, 1, S)
        cached, attention = [], None
        for index, (layer, cross) in enumerate(zip(self.layers, self.cross(memory), strict=True)):
            inputs, kept, weights = layer(inputs, None if past is None else past[index], cross, mask,
                                          show=index == self.shown)
            cached.append(kept)
            attention = attention if weights is None else weights
        assert attention is not None  # self.shown is one of the layers
        keys, values = (torch.stack(parts, dim=1) for parts in zip(*cached, strict=True))  # (B, L, h, T, H / h)
        return self.norm(inputs), self._state(keys, values, position, attention)


class TransformerLanguageModel(nn.Module):
    """A decoder-only Transformer: causal self-attention layers over one vocabulary, with the step interface of
    `LanguageModel`. `encode` reads the prompts (B, P), padded at the end, in one causal pass and keeps their keys and
    values; the first step projects the output of each prompt's last token, later steps read the token chosen before
    and attend over the cache, where `self_mask` (B, T) hides the prompts' padding.

    It reads every window of text on its own (`read` carries no state from one window to the next), so its context
    is data.window tokens (held-out text is scored in windows that overlap by half); dynamic evaluation, which adapts
    segment after segment, refuses it.
    """

    carries_state = False  # `read` starts every window afresh
    warmup_steps = WARMUP_STEPS  # the learning-rate warm-up when train.warmup_steps is unset

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.embedder = Embedder(config, vocab_size)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.hidden_size)
        if config.tie_embeddings and config.adaptive_softmax:
            raise ConfigError("model.tie_embeddings needs the full softmax's output matrix, not model.adaptive_softmax")
        self.generator = output_layer(config.hidden_size, vocab_size, config.adaptive_softmax)
        if config.tie_embeddings:
            self.embedder.tie(self.generator)

    def forward(self, tokens: Tensor) -> Tensor:
        """Features (B, T, H) for every position of tokens (B, T), each seeing the positions up to its own."""
        return self._causal(tokens)[0]

    def read(self, tokens: Tensor, hidden: tuple[Tensor, ...] | None = None,
             lengths: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Features (B, T, H) of tokens (B, T) read on their own (hidden is not carried: none is returned)."""
        return self._causal(tokens)[0], ()

    def output_loss(self, features: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of targets (N,) given features (N, H)."""
        return self.generator.loss(features, targets, label_smoothing)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """Read prompts src (B, P) = `<s> prompt` padded at the end: outputs (B, P, H) and, as the final parts, each
        layer's keys and values (L, B, heads, P, H / heads)."""
        outputs, cache = self._causal(src)
        keys, values = (torch.stack(parts) for parts in zip(*cache, strict=True))  # (L, B, heads, P, H / heads)
        return Memory(outputs, outputs, src != PAD_ID, (keys, values))

    def init_state(self, memory: Memory) -> DecoderState:
        """The cache after each prompt, its mask, the next position, and the prompt's last output (B, H)."""
        lengths = memory.mask.sum(dim=1)  # (B,)
        rows = torch.arange(lengths.size(0), device=lengths.device)
        keys, values = (part.transpose(0, 1) for part in memory.final)  # (B, L, heads, P, H / heads)
        return self._state(keys, values, memory.mask, lengths, memory.outputs[rows, lengths - 1])

    @staticmethod
    def _state(keys: Tensor, values: Tensor, mask: Tensor, position: Tensor,
               prompt_output: Tensor | None = None) -> DecoderState:
        waiting = {} if prompt_output is None else {PROMPT_OUTPUT: (prompt_output, ROWS)}
        return declared({"self_keys": (keys, CACHE), "self_values": (values, CACHE), "self_mask": (mask, MASK),
                         POSITION: (position, ROWS), **waiting})

    def state_axes(self) -> dict[str, Axes]:
        """The cache (B, L, heads, T, H / heads), which of its positions hold text (B, T), the next position (B,)
        and, before the first step, the prompt's last output (B, H)."""
        return {"self_keys": CACHE, "self_values": CACHE, "self_mask": MASK, POSITION: ROWS, PROMPT_OUTPUT: ROWS}

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory | None) -> tuple[Tensor, DecoderState]:
        """Logits (B, V) of the next token and the new state; reads tokens (B,) except on the first step (the
        prompt's last output is projected there)."""
        keys, values, mask, position = (state[name] for name in ("self_keys", "self_values", "self_mask", POSITION))
        if PROMPT_OUTPUT in state:
            return self.generator(state[PROMPT_OUTPUT]), self._state(keys, values, mask, position)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # (B, T + 1)
        outputs = self.embedder(tokens.unsqueeze(1), position.unsqueeze(1))  # (B, 1, H)
        cached = []
        for layer, past in zip(self.layers, zip(keys.unbind(1), values.unbind(1), strict=True), strict=True):
            outputs, kept = layer(outputs, mask[:, None, None, :], past=past)
            cached.append(kept)
        keys, values = (torch.stack(parts, dim=1) for parts in zip(*cached, strict=True))
        return self.generator(self.norm(outputs).squeeze(1)), self._state(keys, values, mask, position + 1)

    def _causal(self, tokens: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """The layers over tokens (B, T) from position 0, causally: features (B, T, H) and each layer's cache."""
        positions = torch.arange(tokens.size(1), device=tokens.device).expand_as(tokens)  # (B, T)
        outputs, cache = self.embedder(tokens, positions), []
        for layer in self.layers:
            outputs, kept = layer(outputs, None, causal=True)
            cache.append(kept)
        return self.norm(outputs), cache


def check(config: ModelConfig) -> None:
    """Whole heads: the hidden size splits evenly over them."""
    if config.hidden_size % config.heads:
        raise ConfigError(f"model.hidden_size ({config.hidden_size}) must be a multiple of model.heads "
                          f"({config.heads}) for model.arch=transformer")


TRANSFORMER = register(Architecture("transformer", TransformerEncoder, TransformerDecoder,
                                    TransformerDecoder.state_axes, TransformerLanguageModel, check, WARMUP_STEPS,
                                    ties=True))
