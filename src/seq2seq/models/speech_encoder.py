"""The speech model: log-mel frames, SpecAugment masks while training, a convolutional front end that keeps one frame
in four, the RNN Encoder over what it gives, and the attention decoder over characters of Seq2Seq."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor, nn

from seq2seq.config import AudioConfig, ModelConfig
from seq2seq.data.vocab import PAD_ID
from seq2seq.models.decoder import Memory
from seq2seq.models.encoder import Encoder
from seq2seq.models.seq2seq import Seq2Seq

Length = TypeVar("Length", int, Tensor)


def subsampled(lengths: Length) -> Length:
    """Frames left by a convolution of kernel 3, stride 2 and padding 1: ceil(length / 2)."""
    return (lengths + 1) // 2


def padding_mask(lengths: Tensor, width: int) -> Tensor:
    """(B, width) True at the real positions of rows of the given lengths (B,)."""
    return torch.arange(width, device=lengths.device) < lengths.unsqueeze(1)


class ConvSubsampling(nn.Module):
    """Two 3x3 convolutions of stride 2 over (time, frequency), each followed by ReLU, then a linear projection of
    each remaining frame's channels x frequencies: (B, S, F) -> (B, ceil(ceil(S / 2) / 2), size).

    Positions past a row's length are zeroed before each convolution, so that a padded row gives what it gives
    alone (where the convolution pads with zeros).
    """

    def __init__(self, features: int, channels: int, size: int) -> None:
        super().__init__()
        self.convolutions = nn.ModuleList([nn.Conv2d(1, channels, 3, stride=2, padding=1),
                                           nn.Conv2d(channels, channels, 3, stride=2, padding=1)])
        self.projection = nn.Linear(channels * subsampled(subsampled(features)), size)

    def forward(self, frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Frames (B, S, F) and lengths (B,) -> vectors (B, S', size) and their lengths (B,)."""
        hidden = frames.unsqueeze(1)  # (B, 1, S, F)
        for convolution in self.convolutions:
            hidden = hidden * padding_mask(lengths, hidden.size(2))[:, None, :, None]
            hidden = torch.relu(convolution(hidden))  # (B, C, S', F')
            lengths = subsampled(lengths)
        batch, channels, steps, frequencies = hidden.shape
        vectors = hidden.transpose(1, 2).reshape(batch, steps, channels * frequencies)  # (B, S', C * F')
        return self.projection(vectors), lengths


def mask_bands(extents: Tensor, size: int, count: int, width: int) -> Tensor:
    """(B, size) True inside `count` random bands per row of at most `width` positions each, within the row's extent
    (B,): SpecAugment's masks (Park et al., 2019), drawn from torch's generator."""
    rows = extents.size(0)
    widths = torch.minimum(torch.randint(0, width + 1, (rows, count), device=extents.device),
                           extents.unsqueeze(1))  # (B, count)
    starts = (torch.rand(rows, count, device=extents.device) * (extents.unsqueeze(1) - widths + 1)).long()
    positions = torch.arange(size, device=extents.device)[None, None, :]  # (1, 1, size)
    inside = (positions >= starts.unsqueeze(2)) & (positions < (starts + widths).unsqueeze(2))  # (B, count, size)
    return inside.any(dim=1)


def spec_augment(frames: Tensor, lengths: Tensor, audio: AudioConfig) -> Tensor:
    """Frames (B, S, F) with audio.time_masks bands of frames and audio.freq_masks bands of mel channels set to 0,
    the mean of normalised features."""
    batch, steps, features = frames.shape
    masked = mask_bands(lengths.to(frames.device), steps, audio.time_masks, audio.time_mask_width)[:, :, None]
    channels = torch.full((batch,), features, device=frames.device)
    masked = masked | mask_bands(channels, features, audio.freq_masks, audio.freq_mask_width)[:, None, :]
    return frames.masked_fill(masked, 0.0)


class SpeechEncoder(nn.Module):
    """Log-mel frames -> (training: SpecAugment) -> ConvSubsampling -> the RNN `Encoder` over its vectors.

    Returns what the text Encoder returns, outputs (B, S', H) and the final state parts (L, B, H), and the lengths
    (B,) of the outputs, which the frames' padding no longer shows.
    """

    def __init__(self, model: ModelConfig, audio: AudioConfig) -> None:
        super().__init__()
        self.audio = audio
        self.subsampling = ConvSubsampling(audio.n_mels, model.conv_channels, model.embedding_size)
        self.recurrent = Encoder(0, model.embedding_size, model.hidden_size, model.num_layers, model.rnn,
                                 model.bidirectional, model.dropout)

    def forward(self, frames: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...], Tensor]:
        """Frames (B, S, F), lengths (B,) -> outputs (B, S', H), final state parts (L, B, H), lengths (B,)."""
        if self.training and (self.audio.time_masks or self.audio.freq_masks):
            frames = spec_augment(frames, lengths, self.audio)
        vectors, lengths = self.subsampling(frames, lengths.to(frames.device))
        outputs, final = self.recurrent(vectors, lengths)
        return outputs, final, lengths


class SpeechSeq2Seq(Seq2Seq):
    """A Seq2Seq whose source is log-mel frames (B, S, F) read by a SpeechEncoder; decoding drives it unchanged
    through encode / init_state / step.

    With model.ctc_weight above 0 its encoder also has a CTC head (joint CTC-attention, Kim et al. 2017): a linear
    layer from each encoder output to the target vocabulary, `<pad>` standing for CTC's blank; its loss is added
    with that weight in training (`objectives.sequence_loss`), and decoding may join its prefix scores
    (`seq2seq.decoding.ctc`).
    """

    def __init__(self, model: ModelConfig, audio: AudioConfig, tgt_vocab_size: int) -> None:
        super().__init__(model, 0, tgt_vocab_size, SpeechEncoder(model, audio))
        self.ctc_weight = model.ctc_weight
        self.ctc = nn.Linear(model.hidden_size, tgt_vocab_size) if model.ctc_weight else None

    def encode(self, src: Tensor, src_lengths: Tensor) -> Memory:
        """Run the encoder over frames src (B, S, F) of lengths (B,); the memory's mask covers the subsampled ones."""
        outputs, final, lengths = self.encoder(src, src_lengths)
        return Memory(outputs, self.attention_keys(outputs), padding_mask(lengths, outputs.size(1)), final)

    def ctc_log_probs(self, memory: Memory) -> Tensor:
        """The CTC head's log-probabilities (B, S', V) in fp32 for each encoder output of memory."""
        assert self.ctc is not None, "a speech model trained without model.ctc_weight has no CTC head"
        return torch.log_softmax(self.ctc(memory.outputs).float(), dim=-1)

    def ctc_loss(self, memory: Memory, targets: Tensor, target_lengths: Tensor) -> Tensor:
        """Summed CTC loss of the transcripts targets (B, T) of the given lengths (B,) (an utterance too short to
        spell its transcript adds nothing rather than infinity)."""
        log_probs = self.ctc_log_probs(memory).transpose(0, 1)  # (S', B, V)
        return nn.functional.ctc_loss(log_probs, targets, memory.mask.sum(dim=1), target_lengths, blank=PAD_ID,
                                      reduction="sum", zero_infinity=True)
