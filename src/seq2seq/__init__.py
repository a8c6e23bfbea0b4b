"""seq2seq: RNN encoder-decoders for translation, G2P, summarization, chat and text generation."""

from seq2seq.collector import paused_gc

with paused_gc():  # these imports pull in torch
    from seq2seq.api import Translator, load, train
    from seq2seq.generation import TextGenerator, load_generator, train_language_model

__all__ = ["TextGenerator", "Translator", "load", "load_generator", "train", "train_language_model"]
__version__ = "0.1.0"
