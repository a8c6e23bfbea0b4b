"""Data: vocabularies, tokenizers, readers, named sources, preparation, prepared corpora and batches.

Importing the package imports none of its modules: the torch-free runtime reads a few of them, and their
siblings import torch. The pair readers, encodings and batches of `seq2seq.data.pairs` and `seq2seq.data.examples`
are offered here by name.
"""

from seq2seq.utils.lazy import homes, lazy_getattr

__getattr__ = lazy_getattr(__name__, {
    **homes("seq2seq.data.pairs", [
        "Pair", "Batch", "read_lines", "read_tsv", "tsv_pairs", "read_aligned", "aligned_pairs", "read_jsonl",
        "jsonl_pairs", "json_record", "read_pairs", "stream_pairs", "split_dev", "batch_order", "example_lengths",
        "token_batch_starts", "split_batch", "collate", "pad"]),
    **homes("seq2seq.data.examples", ["Example", "TokenPair", "tokenize_pairs", "encode_pairs", "encode_tokens"]),
})
