"""The pinned XQuAD-R download, exercised through a local file:// mirror (nothing leaves the machine), and where
the data comes from without one."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from polyir.data.sources import SAMPLE, SOURCES, XQUAD_R, download, is_sample, locate
from polyir.errors import InputError


def test_download_verifies_checksums_and_caches(full_data, tmp_path):
    mirror = dataclasses.replace(XQUAD_R, base_url=(full_data / "xquad-r").as_uri() + "/")
    folder = download(mirror, tmp_path / "cache" / "xquad-r")
    assert sorted(p.name for p in folder.iterdir()) == sorted(XQUAD_R.files)
    (folder / "en.json").write_text("kept")  # files present are not fetched again
    download(mirror, folder)
    assert (folder / "en.json").read_text() == "kept"


def test_checksum_mismatch_leaves_nothing(tmp_path):
    (tmp_path / "mirror").mkdir()
    for name in XQUAD_R.files:
        (tmp_path / "mirror" / name).write_text("{}")
    mirror = dataclasses.replace(XQUAD_R, base_url=(tmp_path / "mirror").as_uri() + "/")
    with pytest.raises(InputError, match="checksum mismatch"):
        download(mirror, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_unreachable_source_says_how_to_work_offline(tmp_path):
    mirror = dataclasses.replace(XQUAD_R, base_url=(tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(InputError, match="--data-dir"):
        download(mirror, tmp_path / "cache")


def test_locate_in_a_data_dir(full_data, tmp_path):
    assert locate("xquad-r", full_data) == full_data / "xquad-r"
    shutil.copytree(full_data / "xquad-r", tmp_path / "xquad-r")
    (tmp_path / "xquad-r" / "th.json").unlink()
    with pytest.raises(InputError, match="th.json"):
        locate("xquad-r", tmp_path)


def test_locate_needs_only_the_languages_asked_for(data_dir):
    assert locate("xquad-r", data_dir, ["de", "en"]) == data_dir / "xquad-r"
    with pytest.raises(InputError, match="th.json"):
        locate("xquad-r", data_dir, ["en", "th"])  # the sample has no Thai
    with pytest.raises(InputError, match="no language xx; it has ar, de"):
        locate("xquad-r", data_dir, ["xx"])


def test_offline_without_a_data_dir_falls_back_on_the_bundled_sample(monkeypatch, tmp_path, caplog):
    """No folder given, nothing cached, the source unreachable: the sample, said in the log, when it holds the
    languages asked for; else the download's own error."""
    monkeypatch.setenv("POLYIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POLYIR_DATA", raising=False)
    monkeypatch.setitem(SOURCES, "xquad-r", dataclasses.replace(XQUAD_R, base_url=(tmp_path / "x").as_uri() + "/"))
    with caplog.at_level("WARNING", logger="polyir"):
        folder = locate("xquad-r", None, ["de", "en", "vi"])
    assert folder == SAMPLE / "xquad-r" and is_sample(folder)
    assert "bundled with polyir" in caplog.text and "not the benchmark" in caplog.text
    with pytest.raises(InputError, match="cannot download .*--data-dir"):
        locate("xquad-r", None)  # all eleven languages: more than the sample holds
    assert not is_sample(tmp_path)
