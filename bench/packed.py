"""M2M-100's encoder over packed texts, no compute on padding (bench only, until a GPU measures that it pays).

In forward passes of 256 texts of similar length, 15% of the positions the full batch computes are padding
(bench/RESULTS.md, "real tokens"); smaller passes pad less but launch more kernels per text, and ran slower. Here
a pass's texts are concatenated into one sequence of real tokens: embeddings, projections, layer norms,
feed-forward layers and residuals run on those tokens only, and attention on a jagged nested tensor
(`torch.nested`, `layout=torch.jagged`), which PyTorch's SDPA runs on CUDA as variable-length (flash or
memory-efficient) attention, and on the CPU text by text (slower there: bench/RESULTS.md). The layers are Hugging
Face's own modules, called in the order of `M2M100EncoderLayer.forward` (same parameters, same dropout and layer
drop), so the result is the padded encoder's up to rounding (tests/test_bench.py). Everything a pass needs is
computed on the host by `collate` and copied ahead, so that nothing needs to wait for the GPU (tests/test_cuda.py
checks it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from polyir.model import BiEncoder


@dataclass
class Packing:
    """Where a pass's real tokens are: `tokens` indexes them in the flattened padded ids, `offsets` starts each
    text among them (and ends the last), `positions` are M2M-100's position ids; `longest` and `shortest` bound
    the texts' lengths (given to the jagged tensor, which would otherwise read them from the device)."""

    tokens: torch.Tensor
    offsets: torch.Tensor
    positions: torch.Tensor
    longest: int
    shortest: int


class PackedBiEncoder(BiEncoder):
    """A BiEncoder on an M2M-100 encoder whose forward passes skip padding. Its inputs stay `collate`'s padded
    ids (the step strategies count texts with them) with a `packing` beside them."""

    def collate(self, ids: list[list[int]]) -> dict:
        if self.tokenizer.padding_side != "right":
            raise ValueError("packing expects texts padded on the right")
        inputs = super().collate(ids)
        cuda = self.device.type == "cuda"
        lengths = torch.tensor([len(row) for row in ids])
        columns = torch.arange(inputs["input_ids"].shape[1])
        real = columns < lengths[:, None]
        host = {"tokens": real.flatten().nonzero().squeeze(1),
                "offsets": torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
                "positions": (columns + self.encoder.embed_positions.padding_idx + 1).expand_as(real)[real]}
        on_device = {name: (values.pin_memory() if cuda else values).to(self.device, non_blocking=cuda)
                     for name, values in host.items()}
        inputs["packing"] = Packing(**on_device, longest=int(lengths.max()), shortest=int(lengths.min()))
        return inputs

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                packing: Packing | None = None) -> torch.Tensor:
        if packing is None:
            return super().forward(input_ids, attention_mask)
        states = packed_encoder(self.running_encoder, input_ids.flatten()[packing.tokens], packing).float()
        if self.settings.pooling == "cls":
            pooled = states[packing.offsets[:-1]]
        else:
            pooled = torch.segment_reduce(states, "mean", offsets=packing.offsets)
        return F.normalize(pooled, dim=-1) if self.settings.normalize else pooled


def packed_encoder(encoder: nn.Module, ids: torch.Tensor, packing: Packing) -> torch.Tensor:
    """M2M100Encoder.forward on the real tokens alone: (tokens, width) last hidden states."""
    table = encoder.embed_positions
    if table.padding_idx + 1 + packing.longest > len(table.weights):  # grown as Hugging Face grows it
        table.make_weights(table.padding_idx + 1 + packing.longest + table.offset, table.embedding_dim,
                           table.padding_idx)
    states = encoder.embed_tokens(ids) + table.weights[packing.positions].to(encoder.embed_tokens.weight.dtype)
    states = F.dropout(states, p=encoder.dropout, training=encoder.training)
    for layer in encoder.layers:
        if encoder.training and encoder.layerdrop > 0.0 and torch.rand([]) < encoder.layerdrop:
            continue
        states = packed_layer(layer, states, packing)
    return encoder.layer_norm(states)


def packed_layer(layer: nn.Module, states: torch.Tensor, packing: Packing) -> torch.Tensor:
    """M2M100EncoderLayer.forward on packed tokens, attention over each text's own tokens."""
    attention = layer.self_attn
    count, heads = len(states), attention.num_heads

    def jagged(x: torch.Tensor) -> torch.Tensor:  # (tokens, width) -> (texts, heads, jagged length, head width)
        return torch.nested.nested_tensor_from_jagged(
            x.view(count, heads, attention.head_dim), packing.offsets, min_seqlen=packing.shortest,
            max_seqlen=packing.longest).transpose(1, 2)

    residual = states
    states = layer.self_attn_layer_norm(states)
    attended = F.scaled_dot_product_attention(
        jagged(attention.q_proj(states)), jagged(attention.k_proj(states)), jagged(attention.v_proj(states)),
        dropout_p=attention.dropout if layer.training else 0.0, scale=attention.scaling)
    states = attention.out_proj(attended.transpose(1, 2).values().reshape(count, -1))
    states = residual + F.dropout(states, p=layer.dropout, training=layer.training)
    residual = states
    states = layer.activation_fn(layer.fc1(layer.final_layer_norm(states)))
    states = F.dropout(states, p=layer.activation_dropout, training=layer.training)
    states = F.dropout(layer.fc2(states), p=layer.dropout, training=layer.training)
    return residual + states
