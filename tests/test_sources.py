"""The pinned XQuAD-R download, exercised through a local file:// mirror (nothing leaves the machine)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from polyir.data.sources import XQUAD_R, download, locate
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
