"""Retention methods: what fine-tuning may not take from the starting model, each stating what it protects and
what it costs. (Also: `optim.freeze_embeddings`, and weight interpolation after training, models/merge.py.)"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import torch

from polyir.config import DistillConfig, LoRAConfig
from polyir.distributed import World
from polyir.errors import InputError
from polyir.files import text_lines
from polyir.models.biencoder import BiEncoder


class L2SP:
    """L2-SP (Li, Grandvalet, Davoine 2018): the penalty λ‖θ − θ₀‖² toward the starting weights θ₀, added to the
    gradient as 2λ(θ − θ₀) after the contrastive gradient (and before clipping).

    Protects: every trained weight, in proportion to how far it moved, so what the starting model knew of the
    languages training never shows fades more slowly; it does not know which weights matter to them. Costs: one
    copy of the trained weights (float32) and one pass over them per step."""

    def __init__(self, parameters: list[torch.nn.Parameter], weight: float):
        self.parameters, self.weight = parameters, weight
        self.anchors = [parameter.detach().clone() for parameter in parameters]

    def apply(self) -> torch.Tensor:
        """Add the penalty's gradient to every parameter's .grad; the penalty's value (before the update)."""
        penalty = torch.zeros((), device=self.anchors[0].device if self.anchors else None)
        with torch.no_grad():
            for parameter, anchor in zip(self.parameters, self.anchors):
                moved = parameter - anchor
                penalty = penalty + moved.pow(2).sum()
                if parameter.grad is None:
                    parameter.grad = 2 * self.weight * moved
                else:
                    parameter.grad.add_(moved, alpha=2 * self.weight)
        return self.weight * penalty


def read_texts(texts: dict[str, Path], max_texts: int) -> tuple[list[str], list[str]]:
    """(texts, languages) of the first `max_texts` non-blank lines of each language's file."""
    out, langs = [], []
    for lang, path in texts.items():
        lines = []
        for _, line in text_lines(path):
            if line.strip():
                lines.append(line.strip())
                if len(lines) == max_texts:
                    break
        if not lines:
            raise InputError("no text in the file; expected one text per line", path)
        out += lines
        langs += [lang] * len(lines)
    return out, langs


class Distillation:
    """Distillation from the starting model: the trained model's embedding of each text is held to the frozen
    starting model's, by the squared distance ‖s − t‖² (for unit embeddings 2 − 2·cos), averaged over a batch of
    `batch_size` texts per step and weighted by β against InfoNCE. Both embed in eval mode (no dropout), so that
    at step 0 the loss is 0.

    Protects: the embeddings of the languages given (texts training never shows), directly where retrieval in
    them happens. Costs: the teacher's embeddings, computed once at the start of a run (not per step), one
    forward and backward pass over `batch_size` short texts per step. Under data parallelism each process takes
    its share of a step's texts, divided by the whole batch, so the summed gradient is one process's."""

    def __init__(self, model: BiEncoder, config: DistillConfig, seed: int, world: World):
        self.model, self.config, self.seed, self.world = model, config, seed, world
        texts, langs = read_texts(config.texts, config.max_texts)
        self.ids = model.tokenize(texts, langs, "passage")
        was_training = model.training
        model.eval()
        self.teacher = model.encode_ids(self.ids, sort_by_length=True).to(model.device)  # once: the frozen start
        model.train(was_training)

    def backward(self, step: int) -> torch.Tensor:
        """Add the distillation loss's gradient of optimiser step `step` (1-based) to the model's .grad; its value
        (this process's share)."""
        rng = random.Random(f"{self.seed}-distill-{step}")
        chosen = rng.sample(range(len(self.ids)), min(self.config.batch_size, len(self.ids)))
        mine = chosen[self.world.rank::self.world.size]
        if not mine:
            return torch.zeros((), device=self.model.device)
        was_training = self.model.training
        self.model.eval()
        try:
            student = self.model(**self.model.collate([self.ids[i] for i in mine]))
        finally:
            self.model.train(was_training)
        teacher = self.teacher[torch.tensor(mine, device=self.teacher.device)]
        loss = self.config.weight * (student - teacher).pow(2).sum() / len(chosen)
        loss.backward()
        return loss.detach()


def attach_lora(model: BiEncoder, config: LoRAConfig) -> None:
    """Low-rank adapters (LoRA, Hu et al. 2022, through peft) on the encoder's `targets`; every other encoder
    weight is frozen, so training moves only the adapters' low-rank update.

    Protects: the starting weights themselves, which stay as they were (the update is confined to a rank-r
    subspace of the targeted matrices; how much that spares the languages training never shows is what the
    comparison measures). Costs: the adapters' parameters and optimiser state (small), a little compute per pass;
    the saved model has the adapters merged in (`merged`), so it loads and runs like any model."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    kind = getattr(getattr(model.encoder, "config", None), "model_type", None)
    targets = config.targets or {"m2m_100": ["q_proj", "v_proj"]}.get(kind) or DEFAULTS.get(kind)  # M2M-100, NLLB
    if not targets:
        raise InputError(f"retention.lora: peft knows no default modules for a '{kind}' encoder; give "
                         "retention.lora.targets (names of its linear layers)")
    try:
        inject_adapter_in_model(LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                           target_modules=list(targets)), model.encoder)
    except ValueError as error:
        raise InputError(f"retention.lora: {error}") from None
    for name, parameter in model.encoder.named_parameters():
        parameter.requires_grad_("lora_" in name)


def merged(model: BiEncoder) -> BiEncoder:
    """A copy of `model` with every LoRA adapter merged into its base weight and removed: a plain model again."""
    from peft.tuners.lora import LoraLayer

    copied = copy.deepcopy(model)
    copied.compute = None
    for name, module in list(copied.encoder.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = copied.encoder.get_submodule(parent_name) if parent_name else copied.encoder
            setattr(parent, child, module.get_base_layer())
    return copied
