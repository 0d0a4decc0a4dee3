"""ATTRIBUTION.md: every set and package the dataset (and so the default model) was made from.

CC-BY asks for the creator, a licence notice with its link, a link to the material and a note of
changes; MIT/Apache/ISC/BSD/OFL ask for their notices to travel with copies. The file gives all of
that per set, as collections.json and the packages' metadata state it, and travels beside the model.
"""

from __future__ import annotations

from clipdesk.data.catalogue import SetReport
from clipdesk.data.licences import SHARE_ALIKE
from clipdesk.data.sources import Package


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _link(text: str, url: str) -> str:
    return f"[{_cell(text)}]({url})" if url else _cell(text)


def attribution_markdown(reports: dict[str, SetReport], packages: dict[str, Package], dataset: str) -> str:
    used = sorted((report for report in reports.values() if report.images), key=lambda report: report.info.prefix)
    share_alike = [report for report in used if report.info.spdx in SHARE_ALIKE]
    total = sum(report.images for report in used)
    lines = [
        f"# Attribution: {dataset}",
        "",
        f"clipdesk's default model was trained and evaluated on {total:,} images rendered from {len(used)} icon and "
        "emoji sets published in `@iconify/json`, with texts from the packages listed below. Nothing of these works is "
        "redistributed with the model except what the weights learned from them.",
        "",
        "Changes made: each SVG was rasterised to a small PNG on a white background; monochrome icons were "
        "drawn in one of a few dark colours; OpenMoji glyphs were cropped into their built-in margin. "
        "Names, labels and tags were turned into English captions (and labels in other languages for emoji).",
        "",
        "The works are provided by their authors as-is, without warranties; see each licence.",
        "",
        "## Icon and emoji sets (images)",
        "",
        "| Set | Prefix | Author | Licence | Images |",
        "|---|---|---|---|---:|",
    ]
    for report in used:
        info = report.info
        licence = f"{_link(info.licence_title or info.spdx, info.licence_url)} (`{info.spdx}`)"
        lines.append(f"| {_cell(info.name)} | `{info.prefix}` | {_link(info.author or 'unknown', info.author_url)} "
                     f"| {licence} | {report.images:,} |")
    lines += ["", "## Packages (labels, tags and the source of the images)", "",
              "| Package | Licence | Used for | Project |", "|---|---|---|---|"]
    for package in packages.values():
        lines.append(f"| `{package.spec}` | {_cell(package.licence)} | {_cell(package.used_for)} | {package.url} |")
    if share_alike:
        names = ", ".join(report.info.name for report in share_alike)
        lines += ["", "## Share-alike material", "",
                  f"These sets are under CC BY-SA: {names}; OpenMoji's tags (`openmoji` package) are too. We hold "
                  "that weights trained on them are not an adaptation of any one image (see "
                  "`clipdesk/data/licences.py`); whoever disagrees may treat the weights as CC BY-SA 4.0, "
                  "attributing as above."]
    return "\n".join(lines) + "\n"
