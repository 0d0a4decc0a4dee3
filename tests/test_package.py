"""Model package manifest, loading checks, registry and ready-package import (run side, no torch)."""

import json
import shutil
import zipfile

import pytest

from clipdesk import paths
from clipdesk.errors import ModelPackageError
from clipdesk.runtime import registry
from clipdesk.runtime.package import MANIFEST, Manifest, check_model_name, load_package, write_manifest
from clipdesk.runtime.package_import import import_package, is_package_source


def make_fake_package(folder, name="fake"):
    """A package whose ONNX files are placeholders: enough for manifest, registry and copy tests."""
    folder.mkdir(parents=True)
    (folder / "image.onnx").write_bytes(b"image-bytes")
    (folder / "text.onnx").write_bytes(b"text-bytes")
    manifest = Manifest(name=name, architecture={}, embed_dim=8, image_resolution=32, mean=(0.5,) * 3,
                        std=(0.25,) * 3, context_length=77, logit_scale=100.0)
    write_manifest(folder, manifest)
    return folder


def make_working_package(folder, tiny_model_package, name):
    """A copy of the tiny random model under another name: graphs that load and run, for import tests."""
    shutil.copytree(tiny_model_package, folder)
    data = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**data, "name": name}))
    return folder


def _set_templates(folder, templates):
    data = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**data, "templates": templates}))


def test_manifest_round_trip_records_hashes_and_sizes(tmp_path):
    folder = make_fake_package(tmp_path / "pkg")
    package = load_package(folder)
    assert package.manifest.files["image.onnx"]["bytes"] == len(b"image-bytes")
    assert package.manifest.mean == (0.5, 0.5, 0.5)
    assert package.manifest.templates == []  # older packages name no templates
    package.verify_hashes()
    _set_templates(folder, ["an emoji of a {}.", "{}"])
    assert load_package(folder).manifest.templates == ["an emoji of a {}.", "{}"]


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "text.onnx").unlink(), "incomplete"),
    (lambda f: (f / "image.onnx").write_bytes(b"short"), "damaged"),
    (lambda f: (f / MANIFEST).write_text("{not json"), "not valid JSON"),
    (lambda f: (f / MANIFEST).write_text('{"name": "x"}'), "lacks"),
    (lambda f: (f / MANIFEST).unlink(), "no manifest.json"),
    (lambda f: _set_templates(f, ["an emoji"]), "templates must be a list of texts with one {}"),
    (lambda f: _set_templates(f, "a photo of a {}."), "templates must be a list"),
])
def test_damaged_packages_are_refused_in_one_line(tmp_path, damage, message):
    folder = make_fake_package(tmp_path / "pkg")
    damage(folder)
    with pytest.raises(ModelPackageError, match=message) as caught:
        load_package(folder)
    assert "\n" not in str(caught.value)


def test_same_size_replacement_is_caught_by_the_hash_check(tmp_path):
    folder = make_fake_package(tmp_path / "pkg")
    (folder / "image.onnx").write_bytes(b"IMAGE-BYTES")
    with pytest.raises(ModelPackageError, match="checksum"):
        load_package(folder).verify_hashes()


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x" * 101])
def test_model_names_cannot_escape_the_store(name):
    with pytest.raises(ModelPackageError):
        check_model_name(name)


def test_registry_default_resolution_and_removal(tmp_path, no_bundled_models, tiny_model_package):
    first = import_package(make_working_package(tmp_path / "a", tiny_model_package, "alpha"))
    import_package(make_working_package(tmp_path / "b", tiny_model_package, "beta"))
    assert set(registry.model_entries()) == {"alpha", "beta"}
    assert registry.default_model_name() == "alpha"  # first by name when none is chosen
    registry.set_default_model("beta")
    assert registry.resolve_model().name == "beta"
    assert registry.resolve_model(str(first.path)).name == "alpha"  # a folder works as well as a name
    with pytest.raises(ModelPackageError, match="unknown model 'gamma'"):
        registry.resolve_model("gamma")
    registry.remove_model("beta")
    assert registry.default_model_name() == "alpha"


def test_no_model_installed_gives_a_helpful_error(no_bundled_models):
    with pytest.raises(ModelPackageError, match="no model is installed"):
        registry.resolve_model()


def test_import_from_zip_and_rename(tmp_path, tiny_model_package):
    source = make_working_package(tmp_path / "pkg", tiny_model_package, "zipped")
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in source.iterdir():
            bundle.write(file, f"zipped/{file.name}")
    assert is_package_source(archive)
    package = import_package(archive, "renamed")
    assert package.path == paths.models_dir() / "renamed"
    assert json.loads((package.path / MANIFEST).read_text())["name"] == "renamed"


def test_failed_import_leaves_nothing_behind(tmp_path):
    source = make_fake_package(tmp_path / "pkg", "broken")
    (source / "text.onnx").write_bytes(b"TEXT-BYTES")  # same size, wrong content
    with pytest.raises(ModelPackageError, match="checksum"):
        import_package(source)
    assert not any(paths.models_dir().iterdir())


def test_name_collisions_are_refused(tmp_path, tiny_model_package):
    import_package(make_working_package(tmp_path / "a", tiny_model_package, "same"))
    with pytest.raises(ModelPackageError, match="already exists"):
        import_package(make_working_package(tmp_path / "b", tiny_model_package, "same"))
    assert [p.name for p in paths.models_dir().iterdir()] == ["same"]


def test_zip_members_cannot_write_outside_the_store(tmp_path, tiny_model_package):
    source = make_working_package(tmp_path / "pkg", tiny_model_package, "evil")
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in source.iterdir():
            bundle.write(file, f"../../{file.name}")
        bundle.writestr("../../../outside.txt", "x")
    import_package(archive)
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in (paths.models_dir() / "evil").iterdir()) == ["image.onnx", MANIFEST, "text.onnx"]


def test_clipdesk_home_holds_all_state(clipdesk_home):
    for location in (paths.data_dir(), paths.cache_dir(), paths.models_dir(), paths.database_path(),
                     paths.settings_path(), paths.thumbnail_cache_path()):
        assert clipdesk_home in location.parents or location == clipdesk_home


# --- untrusted packages: paths, sizes, bombs, graphs that do not load ---

def _rewrite_manifest(folder, **changes):
    data = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**data, **changes}))


@pytest.mark.parametrize("outside", ["../../x", "/etc/hostname", "../" * 12 + "etc/hostname", "a/../../b"])
def test_manifest_paths_outside_the_package_are_refused_in_one_line_naming_no_outside_file(
        tmp_path, tiny_model_package, outside):
    folder = make_working_package(tmp_path / "pkg", tiny_model_package, "outside")
    data = json.loads((folder / MANIFEST).read_text())
    _rewrite_manifest(folder, files={**data["files"], outside: {"sha256": "0" * 64, "bytes": 1}})
    with pytest.raises(ModelPackageError, match="unsafe file name") as caught:
        import_package(folder)
    assert "\n" not in str(caught.value) and "exists" not in str(caught.value)
    assert not paths.models_dir().exists() or not list(paths.models_dir().iterdir())


def test_a_symlink_out_of_the_package_is_refused(tmp_path, tiny_model_package):
    folder = make_working_package(tmp_path / "pkg", tiny_model_package, "linked")
    secret = tmp_path / "secret.onnx"
    shutil.move(folder / "text.onnx", secret)
    (folder / "text.onnx").symlink_to(secret)
    with pytest.raises(ModelPackageError, match="points outside the model package"):
        import_package(folder)
    with pytest.raises(ModelPackageError, match="points outside the model package"):
        load_package(folder)


@pytest.mark.parametrize("case", ["no files listed", "hashes of random bytes"])
def test_graphs_that_do_not_load_are_refused_at_import(tmp_path, case):
    folder = make_fake_package(tmp_path / "pkg", "random")  # placeholder bytes with matching hashes
    if case == "no files listed":
        _rewrite_manifest(folder, files={})
        message = "lists no size and checksum for image.onnx"
    else:
        message = "ONNX Runtime cannot load it"
    with pytest.raises(ModelPackageError, match=message) as caught:
        import_package(folder)
    assert ".incoming-" not in str(caught.value)  # the user's file is named, not the staging folder
    assert not list(paths.models_dir().iterdir())


def test_model_verify_runs_both_graphs(tmp_path, tiny_model_package, capsys):
    """A graph replaced by bytes whose checksum the manifest was made to match passes the hash check only."""
    import hashlib

    from clipdesk.cli import main

    package = import_package(make_working_package(tmp_path / "pkg", tiny_model_package, "good")).path
    assert main(["model", "verify", "good"]) == 0
    assert "both graphs load and give finite" in capsys.readouterr().out
    garbage = b"x" * (package / "image.onnx").stat().st_size
    (package / "image.onnx").write_bytes(garbage)
    files = json.loads((package / MANIFEST).read_text())["files"]
    _rewrite_manifest(package, files={**files, "image.onnx": {"sha256": hashlib.sha256(garbage).hexdigest(),
                                                              "bytes": len(garbage)}})
    assert main(["model", "verify", "good"]) == 1
    assert "ONNX Runtime cannot load it" in capsys.readouterr().err


def test_a_zip_bomb_is_refused_before_anything_is_extracted(tmp_path, tiny_model_package, monkeypatch):
    folder = make_working_package(tmp_path / "pkg", tiny_model_package, "bomb")
    size = 64 << 20
    data = json.loads((folder / MANIFEST).read_text())
    files = {**data["files"], "image.onnx": {"sha256": "0" * 64, "bytes": size}}
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("bomb/manifest.json", json.dumps({**data, "files": files}))
        with bundle.open("bomb/image.onnx", "w", force_zip64=True) as member:
            for _ in range(size >> 20):
                member.write(bytes(1 << 20))
        bundle.write(folder / "text.onnx", "bomb/text.onnx")
    assert archive.stat().st_size < size // 4  # 64 MB of zeros in a few kilobytes
    written = []
    real_copy = __import__("clipdesk.runtime.package_import", fromlist=["_copy_capped"])._copy_capped
    monkeypatch.setattr("clipdesk.runtime.package_import._copy_capped",
                        lambda *args: (written.append(args[3]), real_copy(*args)))
    with pytest.raises(ModelPackageError, match="possible zip bomb"):
        import_package(archive)
    assert written == []
    assert not list(paths.models_dir().iterdir())


def test_zip_member_sizes_must_match_the_manifest(tmp_path, tiny_model_package):
    folder = make_working_package(tmp_path / "pkg", tiny_model_package, "liar")
    data = json.loads((folder / MANIFEST).read_text())
    files = {**data["files"], "text.onnx": {**data["files"]["text.onnx"], "bytes": 10}}
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("liar/manifest.json", json.dumps({**data, "files": files}))
        for name in ("image.onnx", "text.onnx"):
            bundle.write(folder / name, f"liar/{name}")
    with pytest.raises(ModelPackageError, match="bytes in the archive, 10 in its manifest"):
        import_package(archive)


def test_leftovers_of_a_killed_import_go_when_the_model_store_next_opens(tmp_path):
    import subprocess
    import sys

    models = paths.models_dir()
    models.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = models / f".incoming-{int(dead.stdout)}-abc123"
    legacy = models / ".incoming-xyz"  # named by older versions: no owner
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        working = models / f".incoming-{alive.pid}-def456"
        for folder in (leftover, legacy, working):
            folder.mkdir()
            (folder / "image.onnx").write_bytes(b"partial")
        registry._cleaned.clear()
        registry.model_entries()
        assert not leftover.exists() and not legacy.exists()
        assert working.exists()  # another process is still building it
    finally:
        alive.kill()
        alive.wait()
