"""What the benchmarks share, on polyir's public API only: models built from configurations at a named shape
(random weights: time and memory do not depend on them), random token-id inputs, the loss, device timing helpers,
the machine's description, the real data, and running one measurement in a fresh process (so that its peak
memory is its own). Scripts beside this file import it by name: Python puts a script's folder on its path."""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from polyir.config import EncoderSettings
from polyir.models.biencoder import BiEncoder
from polyir.training.batch import Batch
from polyir.training.loss import InfoNCE

BENCH = Path(__file__).resolve().parent
SHAPES = {
    "m2m100-418m": {"d": 1024, "layers": 12, "heads": 16, "ffn": 4096, "vocab": 128112},
    "small": {"d": 256, "layers": 4, "heads": 4, "ffn": 1024, "vocab": 8000},
    "tiny": {"d": 64, "layers": 2, "heads": 4, "ffn": 128, "vocab": 1000},
}
QUERY, PASSAGE, TEMPERATURE = 32, 128, 0.05  # longest query and passage in tokens
PAD, EOS = 1, 2
LOSS = InfoNCE(TEMPERATURE)


def full_data() -> Path:
    """All of XQuAD-R and the FLORES-200 lines: $POLYIR_DATA, or ../shared/data beside the checkout."""
    folder = Path(os.environ.get("POLYIR_DATA", BENCH.parents[1] / "shared" / "data"))
    if not (folder / "xquad-r").is_dir():
        sys.exit(f"{sys.argv[0]}: needs the full data at {folder} (xquad-r/, flores-sib200/); set POLYIR_DATA")
    return folder


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def in_fresh_process(module: str, function: str, *args):
    """`module.function(*args)` (JSON-able arguments and result) in a new Python process."""
    code = f"import json, {module}; print(json.dumps({module}.{function}(*json.loads({json.dumps(args)!r}))))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tokenizer():
    """A word-level tokenizer that knows only the special tokens: inputs here are token ids already, and
    polyir and sentence-transformers need a tokenizer only to pad them."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<s>": 0, "<pad>": PAD, "</s>": EOS, "<unk>": 3}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
                                   bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def backbone(kind: str, shape: dict):
    """M2M-100 418M's configuration at `shape` (its decoder cut to one layer: a bi-encoder never runs it), or an
    XLM-R encoder of the same width, depth and vocabulary."""
    from transformers import M2M100Config, M2M100Model, XLMRobertaConfig, XLMRobertaModel

    if kind == "m2m100":
        return M2M100Model(M2M100Config(
            vocab_size=shape["vocab"], d_model=shape["d"], encoder_layers=shape["layers"], decoder_layers=1,
            encoder_attention_heads=shape["heads"], decoder_attention_heads=shape["heads"],
            encoder_ffn_dim=shape["ffn"], decoder_ffn_dim=shape["ffn"], max_position_embeddings=1024,
            dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, encoder_layerdrop=0.05,
            decoder_layerdrop=0.05, activation_function="relu", scale_embedding=True, pad_token_id=PAD,
            bos_token_id=0, eos_token_id=EOS, decoder_start_token_id=EOS))
    return XLMRobertaModel(XLMRobertaConfig(
        vocab_size=shape["vocab"], hidden_size=shape["d"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], intermediate_size=shape["ffn"], max_position_embeddings=PASSAGE + 4,
        pad_token_id=PAD, bos_token_id=0, eos_token_id=EOS), add_pooling_layer=False)


def bi_encoder(kind: str, shape: dict, device: torch.device) -> BiEncoder:
    settings = EncoderSettings(max_query_length=QUERY, max_passage_length=PASSAGE)
    return BiEncoder(backbone(kind, shape), tokenizer(), settings).to(device)


def random_ids(count: int, longest: int, vocab: int, generator: torch.Generator) -> list[list[int]]:
    """Texts of 50-100% of `longest` tokens, ending in EOS."""
    lengths = torch.randint(longest // 2, longest + 1, (count,), generator=generator).tolist()
    return [torch.randint(4, vocab, (n - 1,), generator=generator).tolist() + [EOS] for n in lengths]


def fixed_ids(count: int, vocab: int, generator: torch.Generator) -> list[list[int]]:
    """`count` passages of exactly PASSAGE tokens."""
    return [torch.randint(4, vocab, (PASSAGE - 1,), generator=generator).tolist() + [EOS] for _ in range(count)]


def random_batch(size: int, vocab: int, generator: torch.Generator) -> Batch:
    """`size` random pairs, each of its own example (ids drawn too, so that a memory bank masks nothing)."""
    examples = torch.randint(0, 2**55, (size,), generator=generator).tolist()
    return Batch(random_ids(size, QUERY, vocab, generator), random_ids(size, PASSAGE, vocab, generator),
                 [None] * size, [(example, 0, 0) for example in examples])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
