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


def test_registry_default_resolution_and_removal(tmp_path, no_bundled_models):
    first = import_package(make_fake_package(tmp_path / "a", "alpha"))
    import_package(make_fake_package(tmp_path / "b", "beta"))
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


def test_import_from_zip_and_rename(tmp_path):
    source = make_fake_package(tmp_path / "pkg", "zipped")
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


def test_name_collisions_are_refused(tmp_path):
    import_package(make_fake_package(tmp_path / "a", "same"))
    with pytest.raises(ModelPackageError, match="already exists"):
        import_package(make_fake_package(tmp_path / "b", "same"))
    assert [p.name for p in paths.models_dir().iterdir()] == ["same"]


def test_zip_members_cannot_write_outside_the_store(tmp_path):
    source = make_fake_package(tmp_path / "pkg", "evil")
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
