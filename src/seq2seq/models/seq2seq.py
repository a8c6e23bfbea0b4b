"""Seq2Seq: encoder + decoder + output projection, exposing encode / init_state / step to the decoding code."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.data.vocab import PAD_ID, UNK_ID
from seq2seq.models import architectures
from seq2seq.models.decoder import DecoderState, Memory
from seq2seq.models.loss import projected_cross_entropy, token_cross_entropy
from seq2seq.models.state import Axes

COPY_EPSILON = 1e-12  # keeps log() finite for tokens that can neither be generated nor copied


@dataclass
class DecoderRun:
    """A decoder pass over a whole target: features (B, T, H), attention weights (B, T, S) where the model keeps
    them (copy or coverage), and the encoder's memory."""

    features: Tensor
    attention: Tensor | None
    memory: Memory


class Seq2Seq(nn.Module):
    """An encoder-decoder of the kind `config.arch` names (`architectures`): an RNN's or a Transformer's.

    With `config.copy` it is a pointer-generator (See et al., 2017): each step mixes the softmax over the vocabulary
    with the attention weights scattered onto the source ids, so source tokens outside the vocabulary can be output.
    Its step then returns log-probabilities over the vocabulary and the batch's extension (`Memory.width`).
    """

    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int,
                 encoder: nn.Module | None = None) -> None:
        """encoder: one that reads other sources than token ids (a speech model's, which also overrides `encode`);
        by default the kind's encoder of src_vocab_size token ids."""
        super().__init__()
        self.config = config
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        kind = architectures.get(config.arch)
        self.encoder = encoder if encoder is not None else kind.encoder(config, src_vocab_size)
        self.decoder = kind.decoder(config, tgt_vocab_size)
        self.generator = nn.Linear(config.hidden_size, tgt_vocab_size)
        if config.share_embeddings:  # one vocabulary (`preparation.vocabularies`), a kind that ties
            self.decoder.share(self.encoder)
        if config.tie_embeddings:  # a kind that ties (`architectures.check`)
            self.decoder.tie(self.generator)
        self.warmup_steps = kind.warmup_steps  # the learning-rate warm-up when train.warmup_steps is unset
        self.pointer = nn.Linear(config.hidden_size, 1) if config.copy else None  # p(generate) from the features

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """Run the encoder over src (B, S) once per sentence."""
        outputs, final = self.encoder(_known(src, self.src_vocab_size) if self.config.copy else src, src_lengths)
        keys = self.attention_keys(outputs)
        if not self.config.copy:
            return Memory(outputs, keys, src != PAD_ID, final)
        width = max(self.tgt_vocab_size, int(src.max()) + 1)
        return Memory(outputs, keys, src != PAD_ID, final, src, width)

    def attention_keys(self, outputs: Tensor) -> Tensor:
        """What the decoder's attention reads of the encoder outputs (B, S, H), made once per sentence."""
        return self.decoder.memory_keys(outputs)  # type: ignore[no-any-return]

    def init_state(self, memory: Memory) -> DecoderState:
        """The decoder's state before its first step."""
        return self.decoder.init_state(memory)

    def state_axes(self) -> dict[str, Axes]:
        """The named tensors of the decoder's states and how each lies; `attention` among them: weights to show."""
        return architectures.get(self.config.arch).state_axes(self.config)

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState]:
        """Feed one token per row (B,); returns logits (B, V) for the next token and the new state (a copying model:
        log-probabilities (B, memory.width))."""
        if not self.config.copy:
            features, state = self.decoder.step(tokens, state, memory)
            return self.generator(features), state
        features, state = self.decoder.step(_known(tokens, self.tgt_vocab_size), state, memory)
        assert state.attention is not None and memory.source is not None
        return self.copy_log_probs(features, state.attention, memory.source, memory.width), state

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """Decoder features (B, T, H) for every target position; `project` turns them into logits."""
        return self.run(src, src_lengths, tgt_in, teacher_forcing).features

    def run(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> DecoderRun:
        """Decode the whole target tgt_in (B, T) from src; see `DecoderRun`.

        With teacher_forcing < 1 each step feeds, with that probability, the reference token, and otherwise the
        model's own best guess at the previous step (scheduled sampling).
        """
        memory = self.encode(src, src_lengths)
        state = self.init_state(memory)
        keeps_attention = self.config.copy or self.config.coverage
        if teacher_forcing >= 1.0 and not keeps_attention:
            return DecoderRun(self.decoder(tgt_in, state, memory)[0], None, memory)
        features, weights, tokens = [], [], tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            output, state = self.decoder.step(_known(tokens, self.tgt_vocab_size), state, memory)
            features.append(output)
            if keeps_attention:
                weights.append(state.attention)
            if t + 1 < tgt_in.size(1):
                tokens = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    use_reference = torch.rand(tokens.shape, device=tokens.device) < teacher_forcing
                    tokens = torch.where(use_reference, tokens, self.generator(output).argmax(-1))
        return DecoderRun(torch.stack(features, dim=1), torch.stack(weights, dim=1) if weights else None, memory)

    def project(self, features: Tensor) -> Tensor:
        """Features (..., H) -> logits (..., V)."""
        return self.generator(features)

    def output_loss(self, features: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of targets (N,) given features (N, H), projection and loss fused."""
        return projected_cross_entropy(features, self.generator.weight, self.generator.bias, targets, label_smoothing)

    def copy_log_probs(self, features: Tensor, attention: Tensor, source: Tensor, width: int) -> Tensor:
        """Pointer-generator output: log(p_gen * softmax(logits) + (1 - p_gen) * attention scattered onto the source
        ids), for features (N, H), attention (N, S) and source ids (N, S) -> (N, width), in fp32."""
        generate = self._generate_probability(features).unsqueeze(1)  # (N, 1)
        mixed = torch.softmax(self.generator(features).float(), dim=-1) * generate  # (N, V)
        mixed = nn.functional.pad(mixed, (0, width - mixed.size(1)))  # (N, width)
        mixed = mixed.scatter_add(1, source, attention.float() * (1.0 - generate))
        return torch.log(mixed + COPY_EPSILON)

    def copy_target_log_probs(self, features: Tensor, attention: Tensor, source: Tensor, targets: Tensor) -> Tensor:
        """What `copy_log_probs` gives the targets (N,), computed for them alone (training): the softmax part comes
        from the fused projection and cross-entropy, the copy part from the attention on the target's source ids."""
        generate = self._generate_probability(features)  # (N,)
        in_vocabulary = targets < self.tgt_vocab_size
        known = targets.masked_fill(~in_vocabulary, UNK_ID)
        vocabulary_nll = token_cross_entropy(features, self.generator.weight, self.generator.bias, known)  # (N,)
        generated = torch.exp(-vocabulary_nll) * in_vocabulary
        copied = (attention.float() * (source == targets.unsqueeze(1))).sum(dim=1)  # (N,)
        return torch.log(generate * generated + (1.0 - generate) * copied + COPY_EPSILON)

    def _generate_probability(self, features: Tensor) -> Tensor:
        """p_gen (N,): how much of the next token's probability comes from the vocabulary rather than copying."""
        assert self.pointer is not None
        return torch.sigmoid(self.pointer(features).float()).squeeze(1)


def _known(ids: Tensor, vocab_size: int) -> Tensor:
    """Ids past the vocabulary (copied or extended source tokens) read as <unk>."""
    return ids.masked_fill(ids >= vocab_size, UNK_ID)
