"""The content-addressed stores of raw mail and attachments."""

from __future__ import annotations

import hashlib

import pytest

from helpdesk.storage import ContentStore


def test_put_returns_the_sha256_and_stores_once(tmp_path):
    store = ContentStore(tmp_path)
    data = b"From: a@example.com\r\n\r\nbody"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get(sha) == data
    assert store.path(sha).relative_to(tmp_path).parts == (sha[:2], sha)
    mtime = store.path(sha).stat().st_mtime_ns
    assert store.put(data) == sha
    assert store.path(sha).stat().st_mtime_ns == mtime  # not rewritten


def test_no_temporary_files_are_left_behind(tmp_path):
    store = ContentStore(tmp_path)
    for i in range(20):
        store.put(f"message {i}".encode())
    leftovers = [p for p in tmp_path.rglob(".*") if p.is_file()]
    assert leftovers == []


def test_a_truncated_file_is_replaced_on_the_next_put(tmp_path):
    store = ContentStore(tmp_path)
    data = b"x" * 1000
    sha = store.put(data)
    store.path(sha).write_bytes(data[:10])  # e.g. a disk that filled up
    store.put(data)
    assert store.get(sha) == data


def test_files_of_a_store_with_two_levels_of_fan_out_are_found(tmp_path):
    store = ContentStore(tmp_path)
    data = b"From: old@example.com\r\n\r\nstored before"
    sha = hashlib.sha256(data).hexdigest()
    older = tmp_path / sha[:2] / sha[2:4] / sha
    older.parent.mkdir(parents=True)
    older.write_bytes(data)
    assert store.exists(sha)
    assert store.get(sha) == data
    assert store.put(data) == sha
    assert store.get(sha) == data


def test_missing_content_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        ContentStore(tmp_path).get("0" * 64)
