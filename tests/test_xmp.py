"""XMP sidecars and embedded keywords: written as exiftool reads them, merged, atomic, photos untouched."""

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
from PIL import Image

from clipdesk.cli import main as run_cli
from clipdesk.errors import ClipdeskError
from clipdesk.tagging import xmp
from clipdesk.tagging.keywords import embedded_keywords, import_keywords, read_keywords
from clipdesk.tagging.label_sets import create_label_set
from clipdesk.tagging.tags import add_tags, remove_tags, tags_of_photos
from clipdesk.tagging.xmp_export import export_sidecars
from test_tagging_support import plain_photos  # noqa: F401

EXIFTOOL = shutil.which("exiftool")
# Skips where exiftool is not installed; in CI that skip is a failure (conftest.py).
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None,
                                    reason="exiftool not installed (Debian: libimage-exiftool-perl)")

ODD_NAMES = ["plain.jpg", "with space & 'quote'.jpg", "ünïcödé 東京.jpg", "-starts-with-dash.jpg", "two.dots.v2.JPG"]
TAGS = ["Beach", "Ünïcode tag", "a, with comma", "semi;colon", "dog"]


def exiftool_keywords(sidecar) -> tuple[list[str], list[str]]:
    """What exiftool reads from a file: (XMP-dc:Subject, XMP-lr:HierarchicalSubject) as lists."""
    output = subprocess.run([EXIFTOOL, "-j", "-XMP-dc:Subject", "-XMP-lr:HierarchicalSubject", "--",
                             os.fsencode(sidecar)], capture_output=True, check=True).stdout
    record = json.loads(output)[0]

    def as_list(value):
        return [] if value is None else [str(v) for v in value] if isinstance(value, list) else [str(value)]

    return as_list(record.get("Subject")), as_list(record.get("HierarchicalSubject"))


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def names_in(folder) -> list[str]:
    return sorted(os.listdir(folder))


@needs_exiftool
def test_exiftool_reads_back_exactly_the_tags_written(library, plain_photos):
    photos = plain_photos
    names = list(ODD_NAMES)
    if sys.platform.startswith("linux"):
        names.append(os.fsdecode(b"not-utf8-\xff.jpg"))  # a name that is not valid UTF-8
    for name in names:
        photos.add(name)
    create_label_set(library, "pets", ["dog", "cat"])
    add_tags(library, list(photos.ids.values()), TAGS)
    before = {name: digest(photos.path(name)) for name in names}
    summary = export_sidecars(library)
    assert (summary.photos, summary.written, summary.failed) == (len(names), len(names), [])
    for name in names:
        subjects, hierarchical = exiftool_keywords(photos.path(name) + ".xmp")
        assert sorted(subjects) == sorted(TAGS), name
        assert hierarchical == ["pets|dog"], name
        assert digest(photos.path(name)) == before[name]  # the photo itself is never written
    assert names_in(photos.root) == sorted(names + [name + ".xmp" for name in names])  # no temporary files left
    again = export_sidecars(library)
    assert (again.written, again.unchanged) == (0, len(names))


@needs_exiftool
def test_an_existing_sidecar_keeps_everything_and_gains_what_is_missing(library, plain_photos):
    photos = plain_photos
    photo_id = photos.add("IMG_1.jpg")
    sidecar = photos.path("IMG_1.jpg") + ".xmp"
    subprocess.run([EXIFTOOL, "-q", "-XMP-dc:Subject=Old keyword", "-XMP-dc:Subject=beach", "-XMP-xmp:Rating=4",
                    "-XMP-dc:Title=Sunset", "-XMP-lr:HierarchicalSubject=Places|Spain", sidecar], check=True)
    add_tags(library, [photo_id], ["Beach", "family"])
    create_label_set(library, "people", ["family"])
    export_sidecars(library)
    subjects, hierarchical = exiftool_keywords(sidecar)
    assert subjects == ["Old keyword", "beach", "family"]  # "Beach" is "beach": not added twice
    assert hierarchical == ["Places|Spain", "people|family"]
    record = json.loads(subprocess.run([EXIFTOOL, "-j", "-XMP:Rating", "-XMP:Title", sidecar],
                                       capture_output=True, check=True).stdout)[0]
    assert (record["Rating"], record["Title"]) == (4, "Sunset")


def test_foreign_namespaces_and_prefixes_survive_a_merge(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg bytes")
    (tmp_path / "a.jpg.xmp").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:acme="http://acme.example/ns/1.0/" acme:rating="5">'
        '<acme:history><rdf:Seq><rdf:li>crop</rdf:li></rdf:Seq></acme:history>'
        '<dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/">single</dc:subject>'
        '</rdf:Description></rdf:RDF></x:xmpmeta>', encoding="utf-8")
    result = xmp.write_sidecar(str(photo), ["new"])
    assert (result.added, result.created) == (1, False)
    text = (tmp_path / "a.jpg.xmp").read_text(encoding="utf-8")
    assert 'acme:rating="5"' in text and "<acme:history>" in text and "<rdf:li>crop</rdf:li>" in text
    assert xmp.read_keywords(text.encode()) == ["single", "new"]  # a plain-text subject became a bag
    assert photo.read_bytes() == b"jpeg bytes"


def test_stem_naming_damaged_sidecars_and_doctype(tmp_path):
    photo = str(tmp_path / "IMG_2.CR2.jpg")
    open(photo, "wb").close()
    result = xmp.write_sidecar(photo, ["x"], naming="stem")
    assert result.path == str(tmp_path / "IMG_2.CR2.xmp") and result.created
    damaged = tmp_path / "IMG_2.CR2.jpg.xmp"
    damaged.write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF")
    with pytest.raises(xmp.XmpError, match="not valid XMP"):
        xmp.write_sidecar(photo, ["y"])
    assert damaged.read_bytes() == b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF"  # never overwritten
    with pytest.raises(xmp.XmpError, match="DOCTYPE"):
        xmp.parse_packet(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>')
    with pytest.raises(ClipdeskError, match="unknown sidecar naming"):
        xmp.write_sidecar(photo, ["y"], naming="lightroom")


def test_export_reports_damaged_sidecars_and_missing_photos_and_goes_on(library, plain_photos, capsys):
    photos = plain_photos
    ids = [photos.add(name) for name in ("a.jpg", "b.jpg", "c.jpg")]
    add_tags(library, ids, ["kept"])
    open(photos.path("a.jpg") + ".xmp", "w").write("garbage")
    os.unlink(photos.path("b.jpg"))
    assert run_cli(["export", "xmp"]) == 1
    err = capsys.readouterr().err
    assert "a.jpg.xmp: not valid XMP" in err and "b.jpg: the photo is not there any more" in err
    assert xmp.read_keywords(open(photos.path("c.jpg") + ".xmp", "rb").read()) == ["kept"]
    assert not os.path.exists(photos.path("b.jpg") + ".xmp")
    assert run_cli(["export", "xmp", "--tag", "nope"]) == 1


def iptc_segment(keywords, utf8=True) -> bytes:
    """A JPEG APP13 segment holding IPTC keywords (2:25), with the UTF-8 charset mark (1:90) or without."""
    records = b"\x1c\x01\x5a" + struct.pack(">H", 3) + b"\x1b%G" if utf8 else b""
    for keyword in keywords:
        data = keyword.encode("utf-8" if utf8 else "cp1252")
        records += b"\x1c\x02\x19" + struct.pack(">H", len(data)) + data
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(records)) + records + b"\x00" * (len(records) % 2)
    payload = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with(xmp_packet=None, iptc=None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, "JPEG", **({"xmp": xmp_packet} if xmp_packet else {}))
    data = buffer.getvalue()
    return data[:2] + (iptc or b"") + data[2:]


PACKET = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
          b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:lr="http://ns.adobe.com/lightroom/1.0/">'
          b'<dc:subject><rdf:Bag><rdf:li>Embedded</rdf:li></rdf:Bag></dc:subject>'
          b'<lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|France|Paris</rdf:li></rdf:Bag></lr:hierarchicalSubject>'
          b'</rdf:Description></rdf:RDF></x:xmpmeta>')


def test_keywords_are_read_from_embedded_xmp_iptc_and_sidecars(tmp_path):
    data = jpeg_with(PACKET, iptc_segment(["Straße", "東京", "embedded"]))
    assert embedded_keywords(data) == ["Embedded", "Paris", "Straße", "東京", "embedded"]
    assert embedded_keywords(jpeg_with(iptc=iptc_segment(["Café"], utf8=False))) == ["Café"]
    photo = tmp_path / "p.jpg"
    photo.write_bytes(data)
    xmp.write_sidecar(str(photo), ["From sidecar", "stem only"], naming="stem")
    xmp.write_sidecar(str(photo), ["from SIDECAR", "Other"])
    # photo.jpg.xmp, then photo.xmp, then the file's own metadata; duplicates in any case dropped
    assert read_keywords(str(photo)) == ["from SIDECAR", "Other", "stem only", "Embedded", "Paris", "Straße", "東京"]


@needs_exiftool
def test_keywords_exiftool_wrote_into_a_photo_are_read(tmp_path):
    photo = tmp_path / "camera.jpg"
    photo.write_bytes(jpeg_with())
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", "-codedcharacterset=utf8", "-IPTC:Keywords=Zürich",
                    "-IPTC:Keywords=lake", "-XMP-dc:Subject=Alps", str(photo)], check=True)
    assert read_keywords(str(photo)) == ["Alps", "Zürich", "lake"]


def test_importing_keywords_adds_user_tags_but_not_rejected_ones(library, plain_photos):
    photos = plain_photos
    photo_id = photos.add("p.jpg")
    open(photos.path("p.jpg"), "wb").write(jpeg_with(PACKET))
    xmp.write_sidecar(photos.path("p.jpg"), ["holiday", "Places|France"])  # not a possible tag: skipped
    summary = import_keywords(library)
    assert (summary.photos, summary.with_keywords, summary.added) == (1, 1, 3)
    assert sorted(t.name for t in tags_of_photos(library, [photo_id])[photo_id]) == ["Embedded", "Paris", "holiday"]
    remove_tags(library, [photo_id], ["holiday"])
    assert import_keywords(library).added == 0  # removed in clipdesk: not brought back from the sidecar
    assert run_cli(["tag", "import", photos.root]) == 0


def test_a_sidecar_that_is_a_symlink_stays_a_link_and_its_target_gains_the_keywords(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg bytes")
    shared = tmp_path / "elsewhere" / "shared.xmp"
    shared.parent.mkdir()
    xmp.write_sidecar(str(tmp_path / "b.jpg"), ["old"])
    shutil.move(tmp_path / "b.jpg.xmp", shared)
    (tmp_path / "a.jpg.xmp").symlink_to(shared)
    result = xmp.write_sidecar(str(photo), ["new"])
    assert result.added == 1
    assert (tmp_path / "a.jpg.xmp").is_symlink() and os.readlink(tmp_path / "a.jpg.xmp") == str(shared)
    assert xmp.read_keywords(shared.read_bytes()) == ["old", "new"]
    assert sorted(p.name for p in shared.parent.iterdir()) == ["shared.xmp"]  # no temporary left behind


def test_a_file_s_own_prefix_for_dublin_core_is_kept(tmp_path):
    """docs/tagging.md: namespaces and their prefixes stay. A file that calls Dublin Core `purl:` keeps it."""
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg bytes")
    (tmp_path / "a.jpg.xmp").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:purl="http://purl.org/dc/elements/1.1/">'
        '<purl:subject><rdf:Bag><rdf:li>old</rdf:li></rdf:Bag></purl:subject>'
        '</rdf:Description></rdf:RDF></x:xmpmeta>', encoding="utf-8")
    assert xmp.write_sidecar(str(photo), ["new"]).added == 1
    text = (tmp_path / "a.jpg.xmp").read_text(encoding="utf-8")
    assert "<purl:subject>" in text and "dc:" not in text
    assert xmp.read_keywords(text.encode()) == ["old", "new"]
    other = tmp_path / "b.jpg"  # and the next file, without a sidecar, gets the usual dc: again
    xmp.write_sidecar(str(other), ["x"])
    assert "<dc:subject>" in (tmp_path / "b.jpg.xmp").read_text(encoding="utf-8")
