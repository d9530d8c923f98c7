"""Models: the bi-encoder (biencoder.py) over any encoder or the encoder of M2M-100 / NLLB, with language tokens,
prefixes, pooling and saving; where a model comes from (packaged.py: `pkg:` sources, and the packed
multilingual-e5 reader with its tokenizer parts: packed_e5.py, unigram.py, charsmap.py); the
sentence-transformers folder format (sbert.py); batching token ids (padding.py) and a bf16 compute copy
(precision.py)."""
