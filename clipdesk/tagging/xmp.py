"""XMP packets and sidecar files: read keywords, merge keywords in, write sidecars atomically.

Keywords go where every common reader looks: `dc:subject` (a bag of flat keywords: exiftool's Subject,
digiKam, darktable, Lightroom) and `lr:hierarchicalSubject` (levels joined by `|`: Lightroom's and
digiKam's keyword trees). Merging adds what is missing (compared without regard to case) and keeps
everything else in the packet: other properties, other namespaces, keywords written by other programs.

Sidecars: `photo.jpg.xmp` by default (darktable and digiKam); `photo.xmp` with naming="stem"
(Lightroom's style, shared by every file with that stem, so RAW+JPEG pairs share it). Photos are never
opened for writing. XML with a DOCTYPE or entity declarations is refused: XMP needs neither, and
refusing them closes the entity-expansion attacks on the parser.
"""

from __future__ import annotations

import io
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clipdesk.errors import ClipdeskError
from clipdesk.atomic import write_atomically

NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "crs": "http://ns.adobe.com/camera-raw-settings/1.0/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "darktable": "http://darktable.sf.net/",
}
for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)
_KNOWN_URIS = frozenset(NAMESPACES.values())
_PREFIX_OF = {uri: prefix for prefix, uri in NAMESPACES.items()}

RDF = "{%s}" % NAMESPACES["rdf"]
SUBJECT = "{%s}subject" % NAMESPACES["dc"]
HIERARCHICAL = "{%s}hierarchicalSubject" % NAMESPACES["lr"]
CONTAINERS = (RDF + "Bag", RDF + "Seq", RDF + "Alt")
SEPARATOR = "|"
NAMINGS = ("ext", "stem")
_PACKET_START = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?x[am]pmeta|rdf:RDF)[\s>]")
_GENERATED_PREFIX = re.compile(r"^ns\d+$")


class XmpError(ClipdeskError):
    """An XMP packet that cannot be read (not XML, or with a DOCTYPE)."""


@dataclass(frozen=True)
class SidecarWrite:
    path: str  # the sidecar
    added: int  # keywords (flat and hierarchical) that were not there before
    created: bool  # no sidecar existed


# --- packets ---

def parse_packet(data: bytes, source: str = "XMP") -> ET.Element:
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmpError(f"{source}: XML with a DOCTYPE or entities is not XMP; refused")
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            # Keep the file's own prefixes on rewrite (a generated ns0 would be valid but unfamiliar);
            # the well-known ones stay as they are whatever a file says.
            if (prefix and not _GENERATED_PREFIX.match(prefix) and prefix != "xml" and prefix not in NAMESPACES
                    and uri not in _KNOWN_URIS):
                ET.register_namespace(prefix, uri)
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise XmpError(f"{source}: not valid XMP ({exc}){' (empty file)' if not head.strip() else ''}") from None


def find_packet(data: bytes) -> bytes | None:
    """The XMP packet inside a file's bytes (JPEG APP1, PNG iTXt, TIFF, WebP...), if there is one."""
    match = _PACKET_START.search(data)
    if not match:
        return None
    end_tag = b"</" + match.group(1) + b">"
    end = data.find(end_tag, match.start())
    return data[match.start():end + len(end_tag)] if end >= 0 else None


def _rdf(root: ET.Element) -> ET.Element | None:
    return root if root.tag == RDF + "RDF" else root.find(".//" + RDF + "RDF")


def _items(prop: ET.Element) -> list[str]:
    container = next((child for child in prop if child.tag in CONTAINERS), None)
    if container is None:  # not a bag: some writers put a single keyword as plain text
        return [prop.text.strip()] if prop.text and prop.text.strip() else []
    return [item.text.strip() for item in container.findall(RDF + "li") if item.text and item.text.strip()]


def keywords_of(root: ET.Element) -> tuple[list[str], list[str]]:
    """(dc:subject items, lr:hierarchicalSubject items) of a parsed packet."""
    rdf = _rdf(root)
    if rdf is None:
        return [], []
    subjects = [item for prop in rdf.iter(SUBJECT) for item in _items(prop)]
    hierarchical = [item for prop in rdf.iter(HIERARCHICAL) for item in _items(prop)]
    return subjects, hierarchical


def read_keywords(data: bytes, source: str = "XMP") -> list[str]:
    """Flat keywords of a packet: dc:subject plus the last level of each hierarchical subject."""
    subjects, hierarchical = keywords_of(parse_packet(data, source))
    leaves = [item.split(SEPARATOR)[-1].strip() for item in hierarchical]
    return _unique(subjects + [leaf for leaf in leaves if leaf])


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.casefold(), item)
    return list(seen.values())


def _bag(description: ET.Element, tag: str) -> ET.Element:
    """The container of property `tag` under `description`, made a bag if missing."""
    prop = description.find(tag)
    if prop is None:
        prop = ET.SubElement(description, tag)
    container = next((child for child in prop if child.tag in CONTAINERS), None)
    if container is None:
        text = (prop.text or "").strip()
        prop.text = None
        container = ET.SubElement(prop, RDF + "Bag")
        if text:
            ET.SubElement(container, RDF + "li").text = text
    return container


def _description_with(rdf: ET.Element, tag: str) -> ET.Element:
    descriptions = rdf.findall(RDF + "Description")
    for description in descriptions:
        if description.find(tag) is not None:
            return description
    if descriptions:
        return descriptions[0]
    return ET.SubElement(rdf, RDF + "Description", {RDF + "about": ""})


def _add(container: ET.Element, items: Sequence[str]) -> int:
    present = {(item.text or "").strip().casefold() for item in container.findall(RDF + "li")}
    added = 0
    for item in items:
        if item.casefold() not in present:
            ET.SubElement(container, RDF + "li").text = item
            present.add(item.casefold())
            added += 1
    return added


def new_packet() -> ET.Element:
    root = ET.Element("{adobe:ns:meta/}xmpmeta", {"{adobe:ns:meta/}xmptk": "clipdesk"})
    rdf = ET.SubElement(root, RDF + "RDF")
    ET.SubElement(rdf, RDF + "Description", {RDF + "about": ""})
    return root


def merge_keywords(root: ET.Element, subjects: Sequence[str], hierarchical: Sequence[str] = ()) -> int:
    """Add keywords missing from the packet (in place); returns how many were added."""
    rdf = _rdf(root)
    if rdf is None:
        rdf = ET.SubElement(root, RDF + "RDF")
    added = 0
    if subjects:
        added += _add(_bag(_description_with(rdf, SUBJECT), SUBJECT), subjects)
    if hierarchical:
        added += _add(_bag(_description_with(rdf, HIERARCHICAL), HIERARCHICAL), hierarchical)
    return added


def document_prefixes(data: bytes) -> dict[str, str]:
    """Prefixes a file gives well-known namespaces other than ours (`purl:` for Dublin Core, say): kept when
    it is written back (serialize's `prefixes`)."""
    found = {}
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            if uri in _KNOWN_URIS and prefix and prefix != _PREFIX_OF[uri] and uri not in found:
                found[uri] = prefix
    except ET.ParseError:
        pass
    return found


_SERIALIZING = threading.Lock()  # the prefix table ElementTree writes with is global


def serialize(root: ET.Element, prefixes: dict[str, str] | None = None) -> bytes:
    """The packet as bytes; `prefixes` (namespace URI -> prefix) override the usual ones for this document."""
    ET.indent(root, space=" ")
    with _SERIALIZING:
        table = ET._namespace_map  # ElementTree offers no per-call prefixes: swap its table meanwhile
        saved = dict(table)
        try:
            for uri, prefix in (prefixes or {}).items():
                for other in [other for other, taken in table.items() if taken == prefix and other != uri]:
                    del table[other]
                table[uri] = prefix
            body = ET.tostring(root, encoding="unicode")
        finally:
            table.clear()
            table.update(saved)
    return ("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n" + body +
            "\n<?xpacket end=\"w\"?>\n").encode("utf-8")


# --- sidecars ---

def sidecar_path(photo_path: str, naming: str = "ext") -> str:
    if naming not in NAMINGS:
        raise ClipdeskError(f"unknown sidecar naming {naming!r}; choose one of {', '.join(NAMINGS)}")
    return photo_path + ".xmp" if naming == "ext" else os.path.splitext(photo_path)[0] + ".xmp"


def existing_sidecars(photo_path: str) -> list[str]:
    """The photo's sidecars that exist, `photo.jpg.xmp` first (also `photo.XMP`: case differs by program)."""
    stem = os.path.splitext(photo_path)[0]
    candidates = [photo_path + ".xmp", photo_path + ".XMP", stem + ".xmp", stem + ".XMP"]
    found = []
    for candidate in dict.fromkeys(candidates):
        if os.path.isfile(candidate) and not any(os.path.samefile(candidate, other) for other in found):
            found.append(candidate)
    return found


def read_sidecar(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ClipdeskError(f"{path}: cannot read the sidecar ({exc.strerror or exc})") from None


def write_sidecar(photo_path: str, subjects: Sequence[str], hierarchical: Sequence[str] = (), *,
                  naming: str = "ext") -> SidecarWrite:
    """Merge keywords into the photo's sidecar (created if missing); an unchanged sidecar is not rewritten."""
    path = sidecar_path(photo_path, naming)
    prefixes = {}
    if os.path.exists(path):
        data = read_sidecar(path)
        root, prefixes = parse_packet(data, path), document_prefixes(data)
        created = False
    else:
        root, created = new_packet(), True
    added = merge_keywords(root, subjects, hierarchical)
    if added or created:
        try:
            write_atomically(path, serialize(root, prefixes))
        except OSError as exc:
            raise ClipdeskError(f"{path}: cannot write the sidecar ({exc.strerror or exc})") from None
    return SidecarWrite(path, added, created)
