from __future__ import annotations

import pytest

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.sources import detect_format, has_scheme, resolve


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", ("csv", False)),
        ("A.CSV.GZ", ("csv", True)),
        ("a.jsonl", ("jsonl", False)),
        ("a.ndjson.gz", ("jsonl", True)),
        ("a.json", ("json", False)),
        ("part-0.snappy.parquet", ("parquet", False)),
        ("a.parquet.gz", ("parquet", True)),
        ("a.txt", None),
        ("a.csv.bz2", None),
        (".csv", None),
        ("a.gz", None),
    ],
)
def test_detect_format_by_suffix(name, expected):
    assert detect_format(name) == expected


def test_has_scheme():
    assert has_scheme("s3://bucket/key") and has_scheme("file:///tmp/x") and has_scheme("memory://b/x")
    assert not has_scheme("/tmp/x.csv") and not has_scheme("relative/x.csv") and not has_scheme("c:x.csv")


def _touch(path, text="from_id,to_id\n1,2\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_single_local_file_keeps_the_users_text(tmp_path):
    path = _touch(tmp_path / "in.csv")
    (part,) = resolve(path)
    assert (part.source, part.format, part.compressed, part.local_path) == (path, "csv", False, path)


def test_directory_is_sorted_recursive_and_skips_hidden_and_unsupported(tmp_path):
    root = tmp_path / "export"
    for name in [
        "part-2.csv",
        "part-10.csv.gz",
        "sub/part-1.jsonl",
        "_SUCCESS",
        ".part-2.csv.crc",
        "_temporary/0/part-9.csv",
        ".hidden/part-8.csv",
        "notes.txt",
        "part-3.parquet",
    ]:
        _touch(root / name)
    sources = [part.source for part in resolve(str(root))]
    assert sources == sorted(
        str(root / name) for name in ["part-2.csv", "part-10.csv.gz", "sub/part-1.jsonl", "part-3.parquet"]
    )


def test_glob_matches_supported_files_only(tmp_path):
    for name in ["a.csv", "b.csv", "_c.csv", "d.json", "deep/e.csv", "_tmp/f.csv"]:
        _touch(tmp_path / name)
    assert [p.source for p in resolve(str(tmp_path / "*.csv"))] == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
    ]
    assert [p.source for p in resolve(str(tmp_path / "**" / "*.csv"))] == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
        str(tmp_path / "deep" / "e.csv"),
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda tmp: str(tmp / "missing.csv"), "does not exist"),
        (lambda tmp: _touch(tmp / "in.txt"), "unsupported file type"),
        (lambda tmp: str(tmp / "*.csv"), "the glob contains no data files"),
        (lambda tmp: (tmp / "empty").mkdir() or str(tmp / "empty"), "the directory contains no data files"),
        (
            lambda tmp: _touch(tmp / "d" / "_SUCCESS") and str(tmp / "d"),
            "the directory contains no data files",
        ),
    ],
)
def test_unusable_paths_are_input_errors_naming_the_path(tmp_path, setup, message):
    path = setup(tmp_path)
    with pytest.raises(PairInputError) as excinfo:
        resolve(path)
    assert message in str(excinfo.value) and excinfo.value.source == path


@pytest.mark.parametrize("path", ["", "   ", None])
def test_empty_path_is_refused(path):
    with pytest.raises(PairInputError, match="non-empty"):
        resolve(path)


def test_file_url_single_directory_and_glob(tmp_path):
    _touch(tmp_path / "x" / "a.csv")
    _touch(tmp_path / "x" / "b.jsonl")
    _touch(tmp_path / "x" / "_SUCCESS")
    url = f"file://{tmp_path}/x"
    assert [p.source for p in resolve(url + "/a.csv")] == [url + "/a.csv"]
    assert [p.source for p in resolve(url)] == [url + "/a.csv", url + "/b.jsonl"]
    assert [p.source for p in resolve(url + "/*.csv")] == [url + "/a.csv"]
    with pytest.raises(PairInputError, match="does not exist"):
        resolve(url + "/nope.csv")


def test_memory_url_directory_skips_hidden_parts(memory_bucket):
    fs, prefix = memory_bucket
    for name in ["part-1.csv", "part-0.csv", "_SUCCESS", "_temporary/part-9.csv", "sub/part-2.json"]:
        fs.pipe(f"{prefix}/out/{name}", b"from_id,to_id\n1,2\n")
    url = f"memory:/{prefix}/out"
    assert [p.source for p in resolve(url)] == [
        f"{url}/part-0.csv",
        f"{url}/part-1.csv",
        f"{url}/sub/part-2.json",
    ]
    assert [p.source for p in resolve(url + "/part-*.csv")] == [f"{url}/part-0.csv", f"{url}/part-1.csv"]
    with pytest.raises(PairInputError, match="no data files"):
        resolve(url + "/*.parquet")
