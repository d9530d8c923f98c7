"""Two ways to run one M2M-100 / NLLB-200 checkpoint behind one interface: Hugging Face `generate` (the default;
bf16 on a GPU) and CTranslate2 (converted once from the same checkpoint, int8 on CPU), where installed. Both take
the source language token from the tokenizer and start each output with its own target language token, so one
batch may hold several target languages."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from polyir.errors import InputError
from polyir.files import atomic_dir
from polyir.languages import LanguageResolver
from polyir.models.biencoder import model_languages
from polyir.models.packaged import resolve_model_path
from polyir.models.padding import pad_token_ids
from polyir.provenance import checksum

log = logging.getLogger(__name__)
BACKENDS = ("huggingface", "ctranslate2")


@dataclass(frozen=True)
class Generation:
    """Settings that change a translation (all part of its cache key); batch size and order only change speed."""

    beam_size: int = 5
    max_input_tokens: int = 200  # longer sentences are cut into pieces at word boundaries
    max_new_tokens: int = 256
    backend: str = "huggingface"
    precision: str = "float32"  # float32 | bfloat16 (Hugging Face) ; int8 | float32 | bfloat16 (CTranslate2)

    def as_json(self) -> dict:
        return asdict(self)


def auto_precision(precision: str, backend: str, device: str) -> str:
    """auto: bf16 on a GPU; on CPU float32, or int8 with CTranslate2."""
    if precision != "auto":
        return precision
    return "bfloat16" if device.startswith("cuda") else "int8" if backend == "ctranslate2" else "float32"


def model_revision(name: str) -> str:
    """sha256 of a local model folder's files, else the hub commit the files came from."""
    path = Path(str(resolve_model_path(name)))
    if path.exists():
        return f"sha256:{checksum(path)[:16]}"
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(name), "_commit_hash", None) or "unknown"


class Translator:
    """A translation model: its tokenizer, its languages, and `generate` on token ids."""

    def __init__(self, name: str, tokenizer, settings: Generation, lang_map: dict[str, str | None] | None = None):
        self.name, self.tokenizer, self.settings = name, tokenizer, settings
        supported = model_languages(tokenizer)
        if supported is None:
            raise InputError(f"the model {name} has no language tokens; expected a multilingual translation model "
                             "such as facebook/m2m100_418M or facebook/nllb-200-distilled-600M")
        self.languages = LanguageResolver(supported, lang_map)
        self.revision = model_revision(name)
        # a language token is never part of a translation (and transformers 5 would decode M2M-100's as words)
        self.language_ids = sorted({tokenizer.convert_tokens_to_ids(self.token(code)) for code in supported})

    def code(self, lang: str, option: str) -> str:
        """The model's code for a dataset language, or exit 2 naming the option and the model."""
        try:
            code = self.languages.resolve(lang)
        except InputError as error:
            raise InputError(f"{option} '{lang}': the translation model {self.name} lacks it ({error.message})") \
                from None
        if code is None:
            raise InputError(f"{option} '{lang}' is mapped to no language token; a translation needs one")
        return code

    def token(self, code: str) -> str:
        """M2M-100 writes language tokens __sw__, NLLB writes them swh_Latn."""
        return self.tokenizer.get_lang_token(code) if hasattr(self.tokenizer, "get_lang_token") else code

    def length(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: list[str], source: str) -> list[list[int]]:
        """Token ids with the source language token and end of sentence, the tokenizer's own way."""
        self.tokenizer.src_lang = source
        return self.tokenizer(texts, truncation=True, max_length=self.settings.max_input_tokens + 2)["input_ids"]

    def sequences(self, ids: list[list[int]], targets: list[str]) -> list[list[int]]:
        """Output token ids, each starting with the decoder start and the text's target language token."""
        raise NotImplementedError

    def generate(self, ids: list[list[int]], targets: list[str]) -> list[str]:
        return self.tokenizer.batch_decode([row[2:] for row in self.sequences(ids, targets)],
                                           skip_special_tokens=True)


class HuggingFace(Translator):
    def __init__(self, name: str, settings: Generation, device: str, lang_map=None):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = resolve_model_path(name)
        super().__init__(name, AutoTokenizer.from_pretrained(path), settings, lang_map)
        if settings.precision not in ("float32", "bfloat16"):
            raise InputError(f"--precision {settings.precision}: the huggingface back end takes float32 or bfloat16")
        self.model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=getattr(torch, settings.precision))
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.start = self.model.config.decoder_start_token_id

    def sequences(self, ids: list[list[int]], targets: list[str]) -> list[list[int]]:
        input_ids, mask = pad_token_ids(ids, self.tokenizer.pad_token_id)
        prefix = torch.tensor([[self.start, self.tokenizer.convert_tokens_to_ids(self.token(t))] for t in targets])
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                                      decoder_input_ids=prefix.to(self.device), num_beams=self.settings.beam_size,
                                      max_new_tokens=self.settings.max_new_tokens, do_sample=False, max_length=None,
                                      num_return_sequences=1, suppress_tokens=self.language_ids)
        return out.tolist()


class CTranslate2(Translator):
    def __init__(self, name: str, settings: Generation, device: str, cache: Path, lang_map=None):
        if importlib.util.find_spec("ctranslate2") is None:
            raise InputError("--backend ctranslate2 needs the ctranslate2 package: pip install ctranslate2")
        import ctranslate2
        from transformers import AutoTokenizer

        path = resolve_model_path(name)
        super().__init__(name, AutoTokenizer.from_pretrained(path), settings, lang_map)
        if settings.precision not in ("int8", "float32", "bfloat16"):
            raise InputError(f"--precision {settings.precision}: the ctranslate2 back end takes int8, float32 or "
                             "bfloat16")
        folder = cache / "ctranslate2" / f"{self.revision.replace(':', '-')}-{settings.precision}"
        if not (folder / "model.bin").is_file():
            from ctranslate2.converters import TransformersConverter

            _register_vocabulary_by_id()
            log.info("converting %s for CTranslate2 (%s) into %s", name, settings.precision, folder)
            with atomic_dir(folder, overwrite=True) as staging:
                TransformersConverter(str(path)).convert(str(staging), quantization=settings.precision, force=True)
        kind = "cuda" if device.startswith("cuda") else "cpu"
        index = int(device.split(":")[1]) if ":" in device else 0
        self.model = ctranslate2.Translator(str(folder), device=kind, device_index=index,
                                            compute_type=settings.precision, intra_threads=torch.get_num_threads())
        self.suppressed = [[token] for token in self.tokenizer.convert_ids_to_tokens(self.language_ids)]

    def sequences(self, ids: list[list[int]], targets: list[str]) -> list[list[int]]:
        tokens = [self.tokenizer.convert_ids_to_tokens(row) for row in ids]
        results = self.model.translate_batch(tokens, target_prefix=[[self.token(t)] for t in targets],
                                             beam_size=self.settings.beam_size,
                                             max_decoding_length=self.settings.max_new_tokens + 1,
                                             suppress_sequences=self.suppressed)
        start = self.tokenizer.convert_tokens_to_ids(self.tokenizer.eos_token)
        return [[start, *self.tokenizer.convert_tokens_to_ids(r.hypotheses[0])] for r in results]


def _register_vocabulary_by_id() -> None:
    """CTranslate2's M2M-100 loader lists the vocabulary from `get_vocab()` and `additional_special_tokens`, which
    transformers 5's M2M100Tokenizer no longer fills with the language tokens: read the token of every id instead,
    naming the ids without one (M2M-100's padding words) as CTranslate2 does."""
    from ctranslate2.converters import transformers as ct2

    class VocabularyById(ct2.M2M100Loader):
        def get_vocabulary(self, model, tokenizer):
            tokens = []
            for index in range(model.config.vocab_size):
                token = tokenizer.convert_ids_to_tokens(index)
                unnamed = token is None or (token == tokenizer.unk_token and index != tokenizer.unk_token_id)
                tokens.append(f"madeupword{index}" if unnamed else token)
            return tokens

    ct2.register_loader("M2M100Config")(VocabularyById)


def load_translator(name: str, settings: Generation, device: str, cache: Path,
                    lang_map: dict[str, str | None] | None = None) -> Translator:
    if settings.backend == "ctranslate2":
        return CTranslate2(name, settings, device, cache, lang_map)
    if settings.backend != "huggingface":
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, got '{settings.backend}'")
    return HuggingFace(name, settings, device, lang_map)
