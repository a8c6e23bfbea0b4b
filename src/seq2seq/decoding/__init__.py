"""Decoding: the options every runtime shares, and the searches (greedy, beam, sampling) over the step interface.

Importing the package imports none of its modules (the torch-free runtime uses `options`, `search` and
`numpy_arrays`, never `torch_arrays`); the options and the search are offered here by name:
`from seq2seq.decoding import DecodingOptions, decode`.
"""

from seq2seq.utils.lazy import homes, lazy_getattr

__getattr__ = lazy_getattr(__name__, {
    **homes("seq2seq.decoding.options", [
        "STRATEGIES", "DEFAULT_BEAM_SIZE", "BATCH_SIZE", "RELATIVE_MAX_LENGTH", "output_cap", "DecodingOptions",
        "with_knobs", "GENERATION_DEFAULTS", "generation_options", "Hypothesis"]),
    **homes("seq2seq.decoding.search", [
        "LogitsProcessor", "StepState", "StepModel", "Decoded", "ban_tokens", "block_eos_before",
        "block_repeated_ngrams", "scale_temperature", "keep_top_k", "keep_top_p", "build_processors", "decode",
        "max_lengths", "greedy", "sample", "stream", "finish", "beam_search"]),
})
