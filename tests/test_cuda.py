"""The CUDA paths, on a GPU (skipped without one): GradCache with CUDA random-state replay, the 'auto' chunk
within its memory budget, no host synchronisation inside a step, bf16 encoding and bf16 compute weights. Models
are built from configurations, so these run where no data folder is (the GPU machine)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from polyir.config import EncoderSettings
from polyir.models.biencoder import BiEncoder
from polyir.training.batch import Batch
from polyir.training.loss import InfoNCE
from polyir.training.passes import CUDA_CHUNK_SIZE, ForwardPasses
from polyir.training.steps import FullBatch, GradCache

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def model(width: int = 256, layers: int = 4) -> BiEncoder:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import M2M100Config, M2M100Model, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"<s>": 0, "<pad>": 1, "</s>": 2,
                                                                              "<unk>": 3}, unk_token="<unk>")),
                                        pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    backbone = M2M100Model(M2M100Config(vocab_size=4000, d_model=width, encoder_layers=layers, decoder_layers=1,
                                        encoder_attention_heads=4, decoder_attention_heads=4,
                                        encoder_ffn_dim=4 * width, decoder_ffn_dim=4 * width, dropout=0.1,
                                        attention_dropout=0.1, encoder_layerdrop=0.0, pad_token_id=1))
    return BiEncoder(backbone, tokenizer, EncoderSettings()).to(CUDA).train()


def batch(size: int, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)

    def ids(longest):
        return [torch.randint(4, 4000, (int(n) - 1,), generator=g).tolist() + [2]
                for n in torch.randint(longest // 2, longest + 1, (size,), generator=g)]
    return Batch(ids(32), ids(128), [None] * size, [(example, 0, 0) for example in range(size)])


loss = InfoNCE(0.05)


def gradient(m: BiEncoder) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in m.encoder.parameters() if p.grad is not None])


@contextmanager
def host_never_waits():
    """Inside, whatever makes the host wait for the GPU raises (CUDA's sync debug mode "error")."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_gradcache_replays_cuda_dropout():
    m, b = model(), batch(24)
    assert m.draws_random_numbers
    m.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    FullBatch(m, loss, chunk_size=8).backward(b)
    reference = gradient(m)
    m.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    GradCache(m, loss, chunk_size=8).backward(b)
    assert float((gradient(m) - reference).norm() / reference.norm()) <= 1e-4


def test_auto_chunk_stays_within_its_memory_budget():
    m, b = model(width=512, layers=6), batch(1024)
    budget = torch.cuda.memory_allocated() / 2**30 + 2.0
    step = GradCache(m, loss, chunk_size="auto", memory_gib=budget)
    optimizer = torch.optim.AdamW(m.encoder.parameters(), fused=True)
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        step.backward(b)
    optimizer.step()
    assert step.chunk_size is None and step.chunk_tokens >= 8 * 128  # bounded in positions, not texts
    assert torch.cuda.max_memory_allocated() / 2**30 <= budget
    shapes = [tuple(inputs["input_ids"].shape) for inputs in ForwardPasses(m, b, None, step.chunk_tokens).inputs]
    assert all(rows * length <= step.chunk_tokens for rows, length in shapes)
    # the first pass of each kind starts at its longest text and holds as many texts as the positions allow:
    # queries (padded to 32) about 4x more than passages (128)
    assert (min(len(b), step.chunk_tokens // 32), 32) in shapes
    assert (min(len(b), step.chunk_tokens // 128), 128) in shapes


def test_no_host_synchronisation_inside_a_step():
    m, b = model(), batch(64)
    assert FullBatch(m, loss).chunk_size == CUDA_CHUNK_SIZE
    for strategy in (FullBatch(m, loss), GradCache(m, loss, chunk_size=16)):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            strategy.backward(b)  # warm-up: allocator, kernels
            with host_never_waits():
                value = strategy.backward(b)
        assert torch.isfinite(value)


def test_bf16_encoding_tracks_fp32_on_cpu():
    m = model().eval()
    ids = batch(40).passages
    on_gpu = m.encode_ids(ids, batch_size=16)
    on_cpu = m.to("cpu").encode_ids(ids, batch_size=16)
    assert torch.nn.functional.cosine_similarity(on_gpu, on_cpu).min() > 0.99


def test_bf16_compute_weights_on_cuda():
    """Without dropout the gradient tracks autocast's up to bf16 rounding (dropout masks drawn for bf16 tensors
    differ from those for float32 ones); with dropout GradCache replays the masks on the bf16 copy; and no step
    waits for the host."""
    reference, b = model().eval(), batch(64)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        GradCache(reference, loss, chunk_size=16).backward(b)
    m = model().eval()
    m.compute_in(torch.bfloat16)
    GradCache(m, loss, chunk_size=16).backward(b)
    assert all(p.grad.dtype == torch.float32 for p in m.encoder.parameters() if p.grad is not None)
    assert float((gradient(m) - gradient(reference)).norm() / gradient(reference).norm()) < 0.05
    m.train()
    for strategy in (FullBatch(m, loss, chunk_size=16), GradCache(m, loss, chunk_size=16)):
        strategy.backward(b)  # warm-up: allocator, kernels
        m.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        with host_never_waits():
            strategy.backward(b)
        grads = gradient(m)
    m.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    FullBatch(m, loss, chunk_size=16).backward(b)
    assert float((grads - gradient(m)).norm() / gradient(m).norm()) < 0.01
