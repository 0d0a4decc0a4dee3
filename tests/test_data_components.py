"""The data pipeline's parts on small synthetic inputs: licences, joins, held-out rules, SVG, rendering, fetching."""

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk.data import DataError
from clipdesk.data.captions import readable, with_article
from clipdesk.data.emoji_labels import EmojiIndex, base_code, normalise_code
from clipdesk.data.heldout import HeldOut, HeldOutConcept
from clipdesk.data.iconify import Icon, IconSetInfo, apply_transform, read_icon_set, svg_document
from clipdesk.data.licences import licence_verdict
from clipdesk.data.sources import MARKER, Package, fetch, fetched_record


@pytest.mark.parametrize("spdx, keep", [
    ("MIT", True), ("Apache-2.0", True), ("CC0-1.0", True), ("CC-BY-4.0", True), ("OFL-1.1", True),
    ("BSD-3-Clause", True), ("CC-BY-SA-4.0", True), ("CC-BY-NC-4.0", False), ("CC-BY-NC-SA-4.0", False),
    ("GPL-3.0-or-later", False), ("LGPL-2.1", False), ("CC-BY-ND-4.0", False), ("", False), (None, False),
    ("Some-Custom-Licence", False)])
def test_licence_verdicts(spdx, keep):
    assert licence_verdict(spdx).keep is keep


def test_share_alike_can_be_excluded():
    assert not licence_verdict("CC-BY-SA-3.0", share_alike=False).keep
    assert licence_verdict("CC-BY-4.0", share_alike=False).keep


EMOJIBASE = [
    {"label": "cat face", "hexcode": "1F431", "group": 3, "tags": ["cat"]},
    {"label": "alien monster", "hexcode": "1F47E", "group": 0},
    {"label": "flag: Belgium", "hexcode": "1F1E7-1F1EA", "group": 9},
    {"label": "artist", "hexcode": "1F9D1-200D-1F3A8", "group": 1,
     "skins": [{"label": "artist: medium-dark skin tone", "hexcode": "1F9D1-1F3FE-200D-1F3A8"}]},
    {"label": "candle", "hexcode": "1F56F", "group": 6},
    {"label": "medium skin tone", "hexcode": "1F3FD", "group": 2},
]


def test_emoji_lookup_by_code_slug_glued_name_and_suffixes():
    index = EmojiIndex(EMOJIBASE, shortcodes={"1F47E": ["space_invader"]})
    assert set(index.concepts) == {"1F431", "1F47E", "1F1E7-1F1EA", "1F9D1-200D-1F3A8", "1F56F"}  # no components
    assert index.lookup("whatever", "1f431").concept.label == "cat face"
    assert index.lookup("cat-face").concept.hexcode == "1F431"
    assert index.lookup("alienmonster").concept.label == "alien monster"          # fxemoji glues words
    assert index.lookup("space-invader").concept.label == "alien monster"         # a shortcode
    assert index.lookup("flag-for-belgium").concept.label == "flag: Belgium"      # Emoji One's flags
    assert index.lookup("x", "1f9d1-1f3fe-200d-1f3a8").label == "artist: medium-dark skin tone"
    assert index.lookup("artist-medium-dark").label == "artist: medium-dark skin tone"  # Fluent's tones
    assert index.lookup("cat-face-2").concept.label == "cat face"                 # Streamline's variants
    assert index.lookup("candle-light") is None  # no skin tones: 'light' is not a tone here
    assert index.lookup("letter-a") is None


def test_codes_ignore_fe0f_and_skin_tones():
    assert normalise_code("2764-FE0F") == normalise_code("2764") == "2764"
    assert base_code("1F469-1F3FB-200D-2764-FE0F-200D-1F469-1F3FC") == "1F469-200D-2764-200D-1F469"


@pytest.fixture
def heldout():
    return HeldOut([HeldOutConcept("1F355", "pizza"), HeldOutConcept("1F44E", "thumbs down"),
                    HeldOutConcept("1F327", "cloud with rain"), HeldOutConcept("1F469", "woman"),
                    HeldOutConcept("2764-FE0F", "red heart"), HeldOutConcept("1F366", "soft ice cream"),
                    HeldOutConcept("1F400", "rat")])


def test_heldout_emoji_by_code_or_label(heldout):
    assert heldout.emoji("2764", "love").label == "red heart"
    assert heldout.emoji("1F469-1F3FD", "woman: medium skin tone").label == "woman"
    assert heldout.emoji(None, "Pizza").label == "pizza"
    assert heldout.emoji("1F469-200D-1F4BB", "woman technologist") is None  # a concept of its own


def test_heldout_icons_by_name_words(heldout):
    assert heldout.icon(["pizza-slice"]).label == "pizza"
    assert heldout.icon(["thumb-down-outline"]).label == "thumbs down"
    assert heldout.icon(["rain-cloud"]).label == "cloud with rain"
    assert heldout.icon(["food", "pizza"]).label == "pizza"  # a synonym counts
    assert heldout.icon(["pirate"]) is None and heldout.icon(["thumb-up"]) is None and heldout.icon(["cloud"]) is None
    assert heldout.icon(["softicecream"]) is None
    assert heldout.icon(["softicecream"], glued=True).label == "soft ice cream"
    assert heldout.icon(["pirateflag"], glued=True) is None  # 'rat' is too short to search inside words


def test_heldout_tags_are_scrubbed_in_every_language(heldout):
    from clipdesk.data.emoji_labels import LocalText

    heldout.add_translations({"de": {"1F355": LocalText("Pizza", ()), "1F469": LocalText("Frau", ())}})
    assert heldout.scrub(["food", "Pizza", "frau", "Frauen", "red-heart"]) == ("food", "Frauen")


def _info(prefix="set"):
    return IconSetInfo(prefix, prefix, "", "MIT", "MIT", "", "", "", 1, False)


def test_aliases_are_synonyms_or_transformed_images(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({
        "prefix": "set", "width": 24, "height": 24,
        "icons": {"arrow": {"body": "<path/>"}, "old": {"body": "<g/>", "hidden": True},
                  "wide": {"body": "<rect/>", "width": 32}},
        "aliases": {"arrow-up": {"parent": "arrow", "rotate": 1}, "pointer": {"parent": "arrow"},
                    "pointer-again": {"parent": "pointer"}, "arrow-down": {"parent": "arrow-up", "rotate": 2},
                    "ghost": {"parent": "missing"}},
        "categories": {"Arrows": ["arrow", "pointer"]}, "chars": {"e001": "pointer"}}))
    icons = {icon.name: icon for icon in read_icon_set(path, _info())}
    assert set(icons) == {"arrow", "wide", "arrow-up", "arrow-down"}
    assert icons["arrow"].synonyms == ("pointer", "pointer-again")
    assert icons["arrow"].categories == ("Arrows",) and icons["arrow"].codepoint == "E001"
    assert "rotate(90 12 12)" in icons["arrow-up"].body and "rotate(-90 12 12)" in icons["arrow-down"].body  # 1+2=3
    assert icons["wide"].width == 32 and icons["wide"].height == 24


def test_quarter_turn_swaps_the_box():
    body, box = apply_transform("<path/>", {"left": 0, "top": 0, "width": 32, "height": 16}, 1, False, False)
    assert (box["width"], box["height"]) == (16, 32) and body.startswith('<g transform="rotate(90 8 8)">')


def _render(icon: Icon, size=64, colour="#000000", inset=0.0) -> np.ndarray:
    from clipdesk.data.rasterise import render_png

    png = render_png(svg_document(icon, size, colour, inset))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_render_is_square_centred_on_white_with_the_colour_given():
    pytest.importorskip("resvg_py")
    wide = Icon("set", "bar", '<rect width="32" height="16" fill="currentColor"/>', 0, 0, 32, 16)
    pixels = _render(wide, colour="#1d4ed8")
    assert pixels.shape == (64, 64, 3)
    assert (pixels[:14] == 255).all() and (pixels[-14:] == 255).all()  # centred, not stretched
    assert tuple(pixels[32, 32]) == (0x1D, 0x4E, 0xD8)


def test_openmoji_margin_is_cropped_only_where_the_drawing_leaves_room():
    pytest.importorskip("resvg_py")
    from clipdesk.data.rasterise import free_inset

    small = Icon("openmoji", "dot", '<rect x="16" y="16" width="40" height="40" fill="#000"/>', 0, 0, 72, 72)
    edge = Icon("openmoji", "bar", '<rect x="0" y="30" width="72" height="12" fill="#000"/>', 0, 0, 72, 72)
    assert free_inset(small, "#000000", 6 / 72) == pytest.approx(6 / 72)
    assert free_inset(edge, "#000000", 6 / 72) == 0.0
    cropped = _render(small, size=72, inset=6 / 72)
    assert (cropped[:, :, 0] < 128).sum() > (_render(small, size=72)[:, :, 0] < 128).sum()


def test_style_words_are_split_off_only_within_a_family():
    from clipdesk.data.catalogue import _style_split

    names = ["heart", "heart-outline", "traffic-light", "baseline-alarm", "twotone-alarm", "add-24-filled",
             "add-20-regular", "add-24", "format-bold"]
    assert _style_split(names) == {
        "heart": ("heart", ""), "heart-outline": ("heart", "outline"), "traffic-light": ("traffic-light", ""),
        "baseline-alarm": ("alarm", "baseline"), "twotone-alarm": ("alarm", "twotone"),
        "add-24-filled": ("add", "filled"), "add-20-regular": ("add", "regular"), "add-24": ("add", ""),
        "format-bold": ("format-bold", "")}


def test_captions_read_naturally():
    assert with_article("apple") == "an apple" and with_article("cat face") == "a cat face"
    assert with_article("user") == "a user" and with_article("unicorn") == "a unicorn"
    assert with_article("umbrella") == "an umbrella" and with_article("up arrow") == "an up arrow"
    assert readable("flag: Germany") == "flag of Germany"
    assert readable("waving hand: dark skin tone") == "waving hand, dark skin tone"


def _tarball(path: Path, version: str) -> None:
    data = json.dumps({"name": "demo", "version": version}).encode()
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("package/package.json")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))


def test_fetch_unpacks_a_cached_tarball_once(tmp_path, monkeypatch):
    package = Package("@demo/pkg", "1.2.3", "MIT", "", "")
    (tmp_path / "npm").mkdir()
    _tarball(tmp_path / "npm" / "demo-pkg-1.2.3.tgz", "1.2.3")
    monkeypatch.setattr("shutil.which", lambda name: None)  # npm must not be needed when the tarball is there
    root = fetch(package, tmp_path, log=lambda _: None)
    assert json.loads((root / "package.json").read_text())["version"] == "1.2.3"
    assert fetched_record(package, tmp_path)["integrity"].startswith("sha512-")
    (tmp_path / "npm" / "demo-pkg-1.2.3.tgz").unlink()
    assert fetch(package, tmp_path, log=lambda _: None) == root  # marker present: nothing fetched


def test_fetch_refuses_a_wrong_version_and_explains_a_missing_npm(tmp_path, monkeypatch):
    (tmp_path / "npm").mkdir()
    _tarball(tmp_path / "npm" / "demo-1.0.0.tgz", "0.9.0")
    with pytest.raises(DataError, match="holds version 0.9.0, expected 1.0.0"):
        fetch(Package("demo", "1.0.0", "MIT", "", ""), tmp_path, log=lambda _: None)
    assert not (tmp_path / "packages" / "demo-1.0.0" / MARKER).exists()
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(DataError, match="npm is not installed"):
        fetch(Package("other", "2.0.0", "MIT", "", ""), tmp_path, log=lambda _: None)
