"""An XLM-R-style fast tokenizer rebuilt from a SentencePiece Unigram vocabulary (pieces and scores) and its
normalisation table, with the `tokenizers` library: the table as a precompiled character map, runs of spaces
collapsed, the metaspace `▁` prepended and put for every space, Viterbi over the pieces, `<s> … </s>` around
each text. Saved, it is an ordinary tokenizer.json that AutoTokenizer loads anywhere."""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from polyir.models.charsmap import precompiled_charsmap
from polyir.models.packed_e5 import PackedE5

METASPACE = "\u2581"


def unigram_tokenizer(packed: PackedE5) -> PreTrainedTokenizerFast:
    special = packed.special
    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores.tolist())]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Precompiled(precompiled_charsmap(packed.normalisation)),
                                                 normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = packed.pieces[special["bos"]], packed.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    mask = "<mask>" if "<mask>" in packed.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        unk_token=packed.pieces[special["unk"]], pad_token=packed.pieces[special["pad"]], mask_token=mask,
        model_max_length=packed.dims["positions"])
