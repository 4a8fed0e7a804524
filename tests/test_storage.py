"""``storage`` tells local disk from object storage on every supported Airflow (on 3.1 an
``ObjectStoragePath`` is also a ``pathlib.Path``), and writes binary files whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_hubspot_assoc import storage


@pytest.mark.parametrize(
    ("path", "local"),
    [
        ("/tmp/state/snapshot.bin", True),
        ("file:///tmp/state/snapshot.bin", True),
        ("s3://aws_default@bucket/state/snapshot.bin", False),
        ("gs://google_cloud_default@bucket/state/snapshot.bin", False),
    ],
)
def test_has_folders_only_on_local_disk(path, local):
    assert storage.has_folders(storage.location(path)) is local


def test_a_file_url_maps_to_a_local_path():
    target = storage.location("file:///tmp/state/snapshot.bin")
    assert storage._local_path(target) == Path("/tmp/state/snapshot.bin")
    assert type(storage._local_path(target)) is type(Path("/"))


def test_replace_binary_writes_whole_or_not_at_all(tmp_path):
    target = tmp_path / "deep" / "state.bin"
    with storage.replace_binary(str(target)) as handle:
        handle.write(b"old")
    with pytest.raises(RuntimeError), storage.replace_binary(str(target)) as handle:
        handle.write(b"new, half")
        raise RuntimeError("stopped half-way")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.bin"]
    with storage.open_binary(f"file://{target}") as handle:
        assert handle.read() == b"old"
    with pytest.raises(FileNotFoundError), storage.open_binary(str(tmp_path / "absent.bin")):
        pass
