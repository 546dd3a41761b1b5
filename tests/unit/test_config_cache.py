"""The config cache: used only for the very file it was made from, trusted only when it
is as private as the file, and never the reason a bad config is accepted."""

import io
import json
import os
import time
from contextlib import redirect_stdout

import pytest

from plugin.config import cache
from plugin.config import loader
from plugin.errors import ConfigError
from plugin.frontends import status
from plugin.ops.gc import sweep_half_written
from tests.unit.test_config import write

INFRA = "ab" * 32


def no_yaml(monkeypatch):
    """From here on, reading the file fails the test."""
    def refuse(path):
        raise AssertionError(f"{path} was parsed again")
    monkeypatch.setattr(loader, "_read_yaml", refuse)


def test_an_unchanged_file_is_not_parsed_again(tmp_path, monkeypatch):
    path = write(tmp_path, "bridge: br_a\n")
    first = loader.load(path)
    no_yaml(monkeypatch)
    assert loader.load(path) == first
    assert cache.recall(path)["facts"] == cache.facts(first)


def test_an_edit_of_the_same_size_is_read_again(tmp_path):
    path = write(tmp_path, "bridge: br_a\n")
    assert loader.load(path).bridge == "br_a"
    with open(path, "w") as handle:  # same inode, same size
        handle.write("bridge: br_b\n")
    assert loader.load(path).bridge == "br_b"


def test_a_file_replaced_with_the_same_mtime_is_read_again(tmp_path):
    path = write(tmp_path, "bridge: br_a\n")
    loader.load(path)
    stamp = os.stat(path).st_mtime_ns
    other = tmp_path / "next.yaml"
    other.write_text("bridge: br_b\n")
    os.utime(other, ns=(stamp, stamp))
    os.replace(other, path)  # another inode
    assert loader.load(path).bridge == "br_b"


def test_a_file_made_writable_by_others_is_refused_though_remembered(tmp_path):
    path = write(tmp_path, "bridge: br_a\n")
    loader.load(path)
    os.chmod(path, 0o666)
    with pytest.raises(ConfigError, match="writable by users other than its owner"):
        loader.load(path)
    assert cache.recall(path) is None


def test_a_bad_file_is_never_remembered(tmp_path):
    path = write(tmp_path, "bridge: [a]\n")
    with pytest.raises(ConfigError):
        loader.load(path)
    assert not os.path.exists(cache.entry_path(path))


@pytest.mark.parametrize("spoil", ["mode", "identity", "format", "garbage"])
def test_an_entry_that_is_not_as_written_is_ignored(tmp_path, spoil):
    path = write(tmp_path, "bridge: br_a\n")
    loader.load(path)
    entry = cache.entry_path(path)
    if spoil == "mode":
        os.chmod(entry, 0o644)
    else:
        body = json.loads(open(entry).read())
        if spoil == "identity":
            body["identity"][1] += 1
        elif spoil == "format":
            body["format"] = cache.FORMAT + 1
        with open(entry, "w") as handle:
            handle.write("{" if spoil == "garbage" else json.dumps(body))
    assert cache.recall(path) is None
    assert loader.load(path).bridge == "br_a"  # parsed, and remembered afresh
    assert cache.recall(path) is not None


def test_a_runtime_dir_others_may_write_is_not_trusted(tmp_path):
    path = write(tmp_path, "bridge: br_a\n")
    loader.load(path)
    os.chmod(cache.RUNTIME_DIR, 0o777)
    assert cache.recall(path) is None


def test_a_runtime_dir_that_is_a_symlink_gets_no_entry(tmp_path, monkeypatch):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setattr(cache, "RUNTIME_DIR", str(link))
    loader.load(write(tmp_path, "bridge: br_a\n"))
    assert os.listdir(real) == []


def test_data_json_would_change_is_not_remembered(tmp_path):
    path = write(tmp_path, "bridge: br_a\n")
    config = loader.load(path)
    os.unlink(cache.entry_path(path))
    cache.remember(path, cache.identity(path), {1: "integer key"}, config)
    assert not os.path.exists(cache.entry_path(path))


def test_paths_that_differ_get_different_entries():
    paths = ["/etc/a%2Fb.yaml", "/etc/a/b.yaml", "/etc/a%252Fb.yaml"]
    assert len({cache.entry_path(p) for p in paths}) == 3
    assert cache.entry_path(None) not in {cache.entry_path(p) for p in paths}


def test_gc_sweeps_entries_a_killed_call_was_writing(tmp_path):
    path = write(tmp_path, "bridge: br_a\n")
    loader.load(path)
    old, fresh = (os.path.join(cache.RUNTIME_DIR, f".tmp-{n}-1") for n in (1, 2))
    for leftover in (old, fresh):
        open(leftover, "w").close()
    os.utime(old, (time.time() - 3600,) * 2)
    assert sweep_half_written(cache.RUNTIME_DIR, dry_run=True, older_than=60) == [old]
    assert os.path.exists(old)
    sweep_half_written(cache.RUNTIME_DIR, dry_run=False, older_than=60)
    assert sorted(os.listdir(cache.RUNTIME_DIR)) == sorted(
        os.path.basename(p) for p in (fresh, cache.entry_path(path)))


def record(state_dir, addresses, primary=True):
    folder = os.path.join(state_dir, "attachments")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    from plugin.core import recordfile

    with open(recordfile.path(state_dir, INFRA), "w") as handle:
        json.dump({"kind": recordfile.KIND, "version": recordfile.VERSION, "infra_id": INFRA,
                   "attachments": [{"addresses": addresses, "primary": primary}]}, handle)


def fast_status(path):
    out = io.StringIO()
    with redirect_stdout(out):
        answered = status.answer_from_cache(path, ["ns", "22-a", INFRA])
    return answered, out.getvalue()


def test_status_answers_from_the_entry_and_its_record(tmp_path):
    state = tmp_path / "state"
    path = write(tmp_path, f"state_dir: {state}\nstatus: {{report: vlan}}\n")
    assert fast_status(path) == (False, "")  # nothing remembered yet: the full way
    loader.load(path)
    record(str(state), ["10.0.0.7/24", "fd00::7/64"])
    answered, out = fast_status(path)
    assert answered and json.loads(out)["ip"] == "10.0.0.7"


def test_status_leaves_what_it_cannot_settle_to_the_full_way(tmp_path):
    state = tmp_path / "state"
    path = write(tmp_path, f"state_dir: {state}\nstatus: {{report: vlan}}\nlog: {{debug: true}}\n")
    loader.load(path)
    record(str(state), ["10.0.0.7/24"])
    assert fast_status(path) == (False, "")  # debug: the full way logs the call
    path = write(tmp_path, f"state_dir: {state}\nstatus: {{report: vlan}}\n")
    loader.load(path)
    os.chmod(state, 0o777)
    assert fast_status(path) == (False, "")  # the full way reports the state dir
    out = io.StringIO()
    with redirect_stdout(out):
        assert not status.answer_from_cache(path, ["NS!", "22-a", INFRA])
    assert out.getvalue() == ""
