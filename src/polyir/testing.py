"""Real, tiny Hugging Face models built from scratch on real text (nothing is downloaded), for the tests and
benchmarks of polyir and of code built on it, as `torch.testing` serves PyTorch's:

- tiny M2M-100: a SentencePiece BPE model trained here, M2M-100's vocab.json layout and its 100 language tokens,
  random weights in the real M2M100 architecture;
- tiny M2M-100 and tiny NLLB-200 translators: the same, as M2M100ForConditionalGeneration, with M2M-100's
  tokenizer or NLLB's (a byte-pair vocabulary trained here and NLLB's 202 FLORES language codes);
- tiny BERT: a WordPiece vocabulary trained here, random weights.

The text is the FLORES-200 lines of the bundled sample (every script of its 16 languages) unless a data folder
with a flores-sib200/ is given, so the same models come out on every machine."""

from __future__ import annotations

import json
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import BertWordPieceTokenizer, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizer,
    M2M100Config,
    M2M100ForConditionalGeneration,
    M2M100Model,
    M2M100Tokenizer,
    NllbTokenizer,
)

from polyir.data.sources import SAMPLE


def training_text(data_dir: Path, out: Path) -> Path:
    """Sentences in every FLORES language, so every script has pieces."""
    lines = []
    for path in sorted((data_dir / "flores-sib200").glob("*_*.txt")):
        lines.extend(path.read_text(encoding="utf-8").splitlines()[:200])
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def build_tiny_m2m100(folder: Path, data_dir: Path = SAMPLE, vocab_size: int = 2000, dropout: float = 0.1,
                      translator: bool = False) -> Path:
    """The model folder (folder/model) of a 2-layer, 32-wide M2M-100 with a SentencePiece vocabulary; with
    `translator`, the whole sequence-to-sequence model (M2M100ForConditionalGeneration)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = training_text(data_dir, folder / "spm-train.txt")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "spm"), vocab_size=vocab_size,
                                   model_type="bpe", character_coverage=0.9995, num_threads=1,
                                   minloglevel=2)
    text.unlink()
    processor = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for index in range(processor.get_piece_size()):
        piece = processor.id_to_piece(index)
        if not processor.is_control(index) and not processor.is_unknown(index):
            vocab.setdefault(piece, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = M2M100Tokenizer(str(folder / "vocab.json"), str(folder / "spm.model"))
    # as in facebook/m2m100_418M: SentencePiece pieces, then the language tokens, then 8 "madeup" words
    config = M2M100Config(vocab_size=max(tokenizer.lang_code_to_id.values()) + 1 + 8, d_model=32,
                          encoder_layers=2, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
                          encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=512, dropout=dropout,
                          attention_dropout=dropout, encoder_layerdrop=0.0, decoder_layerdrop=0.0)
    out = folder / "model"
    with torch.random.fork_rng(), torch.no_grad():  # the same weights in every test session
        torch.manual_seed(0)
        model = (M2M100ForConditionalGeneration if translator else M2M100Model)(config)
        # token embeddings of unit scale after M2M-100's sqrt(d) scaling, as in a trained model, so that
        # positions do not drown the tokens
        model.get_input_embeddings().weight.normal_(0.0, config.d_model ** -0.5)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_nllb(folder: Path, data_dir: Path = SAMPLE, vocab_size: int = 2000) -> Path:
    """The model folder (folder/model) of a tiny NLLB-200 translator: NLLB's tokenizer over a byte-pair vocabulary
    trained here (with NLLB's 202 language codes after it), in the M2M-100 architecture NLLB-200 uses."""
    folder.mkdir(parents=True, exist_ok=True)
    text = training_text(data_dir, folder / "bpe-train.txt")
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.train([str(text)], trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                               special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    text.unlink()
    trained = json.loads(bpe.to_str())["model"]
    tokenizer = NllbTokenizer(vocab=trained["vocab"], merges=[tuple(pair) for pair in trained["merges"]])
    config = M2M100Config(vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=1,
                          encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=512, decoder_start_token_id=2,
                          pad_token_id=1, bos_token_id=0, eos_token_id=2, scale_embedding=True)
    out = folder / "model"
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        model = M2M100ForConditionalGeneration(config)
        model.get_input_embeddings().weight.normal_(0.0, config.d_model ** -0.5)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_bert(folder: Path, data_dir: Path = SAMPLE, vocab_size: int = 3000) -> Path:
    """The model folder (folder/model) of a 2-layer, 32-wide BERT with a WordPiece vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    text = training_text(data_dir, folder / "wp-train.txt")
    trainer = BertWordPieceTokenizer(lowercase=False)
    trainer.train([str(text)], vocab_size=vocab_size, show_progress=False)
    text.unlink()
    out = folder / "model"
    out.mkdir(exist_ok=True)
    trainer.save_model(str(out))
    tokenizer = BertTokenizer.from_pretrained(out, do_lower_case=False)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
