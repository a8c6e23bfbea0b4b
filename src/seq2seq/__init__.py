"""seq2seq: RNN encoder-decoders for translation, G2P, summarization, chat and text generation."""

from seq2seq.api import Translator, load, train

__all__ = ["Translator", "load", "train"]
__version__ = "0.1.0"
