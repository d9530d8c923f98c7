"""Translation throughput on CPU: texts per second against batch size and length sorting, for the Hugging Face
and the CTranslate2 back end in one run (ratios: these machines are noisy), and from it the time to translate a
BEIR corpus of 100k passages.

The model has M2M-100 418M's shape (d 1024, 12 + 12 layers, 16 heads, 128,112-word vocabulary) with random weights
and polyir.testing's tiny tokenizer: compute per token is the real model's, but random weights never emit </s>, so
every output runs to --new-tokens tokens. Length sorting therefore saves encoder padding here, not the decoding
steps it also saves with a trained model (whose outputs follow their inputs' lengths): its gain is a lower bound.
Texts are real English sentences of XQuAD-R (the bundled sample), in their file order.

    python bench/translate_bench.py [--texts 48] [--new-tokens 24] [--beam 2] [--shape m2m100-418m] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from common import BENCH, SHAPES, machine

from polyir.data.lareqa import read_lareqa
from polyir.data.sources import SAMPLE
from polyir.testing import build_tiny_m2m100
from polyir.translate.backends import CTranslate2, Generation, HuggingFace
from polyir.translate.engine import Request, plan, split_requests

PASSAGE_SENTENCES = 5  # a BEIR passage is about five sentences (scifact, nfcorpus abstracts: more)


def model_at_shape(folder: Path, shape: str) -> Path:
    """The tiny fixture's tokenizer on a random M2M-100 of the named shape."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    tiny = build_tiny_m2m100(folder / "tiny", translator=True)
    s = SHAPES[shape]
    config = M2M100Config(vocab_size=s["vocab"], d_model=s["d"], encoder_layers=s["layers"],
                          decoder_layers=s["layers"], encoder_attention_heads=s["heads"],
                          decoder_attention_heads=s["heads"], encoder_ffn_dim=s["ffn"], decoder_ffn_dim=s["ffn"],
                          max_position_embeddings=1024, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(folder / "model")
    for name in ("vocab.json", "sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny / name).is_file():
            (folder / "model" / name).write_bytes((tiny / name).read_bytes())
    return folder / "model"


def rate(translator, texts: list[str], batch_size: int, sort: bool) -> float:
    """Texts per second over the whole list (tokenising included)."""
    requests = [Request(text, "en", "sw") for text in texts]
    start = time.perf_counter()
    pieces = split_requests(requests, translator)
    for _, ids in plan((p for group in pieces.values() for p in group), translator, batch_size, sort):
        translator.sequences(ids, ["sw"] * len(ids))
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=48)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--beam", type=int, default=2)
    parser.add_argument("--shape", default="m2m100-418m", choices=sorted(SHAPES))
    parser.add_argument("--batches", default="1,8,16")
    parser.add_argument("--device", default="cpu", help="cuda: bf16 for both back ends")
    args = parser.parse_args()
    by_lang = read_lareqa(SAMPLE / "xquad-r", languages=["en"])
    texts = [s for a in by_lang["en"] for s in a.sentences.values()][:args.texts]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = str(model_at_shape(Path(tmp), args.shape))
        settings = dict(beam_size=args.beam, max_new_tokens=args.new_tokens)
        gpu = args.device.startswith("cuda")
        hf, ct2 = ("bfloat16", "bfloat16") if gpu else ("float32", "int8")
        backends = {f"huggingface {hf}": HuggingFace(model, Generation(**settings, precision=hf), args.device),
                    f"ctranslate2 {ct2}": CTranslate2(model, Generation(**settings, backend="ctranslate2",
                                                                        precision=ct2), args.device, Path(tmp))}
        for name, translator in backends.items():
            rate(translator, texts[:4], 4, True)  # warm-up
            for batch in map(int, args.batches.split(",")):
                for sort in ((True, False) if batch > 1 else (True,)):
                    value = rate(translator, texts, batch, sort)
                    rows.append({"backend": name, "batch": batch, "sorted": sort, "texts_per_s": round(value, 3)})
                    print(json.dumps(rows[-1]), flush=True)
    base = next(r["texts_per_s"] for r in rows if r["backend"].startswith("huggingface") and r["batch"] == 1)
    best = max(rows, key=lambda r: r["texts_per_s"])
    print(f"\n{machine()}; {args.texts} sentences, {args.new_tokens} new tokens, beam {args.beam}, shape {args.shape}")
    print("| back end | batch | sorted | texts/s | × HF batch 1 |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['batch']} | {'yes' if r['sorted'] else 'no'} | {r['texts_per_s']:.2f} | "
              f"{r['texts_per_s'] / base:.2f} |")
    hours = 100_000 * PASSAGE_SENTENCES / best["texts_per_s"] / 3600
    print(f"\n100k passages × {PASSAGE_SENTENCES} sentences at the best rate ({best['backend']}, batch "
          f"{best['batch']}): {hours:.1f} hours per target language on {args.device}")
    (BENCH / "results").mkdir(exist_ok=True)
    with (BENCH / "results" / "translate_bench.jsonl").open("a") as out:
        out.write(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": machine(), "args": vars(args),
                              "rows": rows}) + "\n")


if __name__ == "__main__":
    main()
