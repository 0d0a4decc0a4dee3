"""Which licences may feed the default model, whose weights clipdesk redistributes.

Kept: licences that allow commercial use and redistribution of derived works under our own terms,
asking at most for attribution (MIT, Apache-2.0, ISC, BSD, CC0, Unlicense, CC-BY, OFL) or binding only
modified copies of the covered files themselves (MPL-2.0: the weights are not such a copy).

Dropped: non-commercial (CC-*-NC-*), no-derivatives (CC-*-ND-*), GPL/LGPL/AGPL (whether weights are a
"work based on" the icons is unsettled, and a wrong guess would bind the app), and anything unknown.

Share-alike (CC-BY-SA-3.0/4.0; OpenMoji and Emoji One v1 among them) is KEPT by default. Reasoning:
- ShareAlike binds "Adapted Material" that is shared. The PNG renders and manifests are a local,
  git-ignored intermediate and are never distributed; a format change is not an adaptation anyway
  (CC 4.0 section 2(a)(4)).
- Trained weights are statistics over some 350,000 images from about 230 sets; they do not contain or
  reproduce any one image, so they are not a translation, alteration or arrangement of it. Training is
  analysis, which CC licences do not restrict where an exception (text and data mining) applies
  (CC 4.0 section 2(a)(2), 8(d)).
- In the adverse reading the remedy is available and cheap: publish the weights under CC-BY-SA-4.0
  with the attribution file, which the model package can carry. `share_alike=False` (the
  `--no-share-alike` flag) builds the same dataset without these sets and without OpenMoji's tags.
"""

from __future__ import annotations

from dataclasses import dataclass

PERMISSIVE = frozenset({
    "MIT", "Apache-2.0", "ISC", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "CC0-1.0", "Unlicense",
    "CC-BY-3.0", "CC-BY-4.0", "OFL-1.1", "MPL-2.0",
})
SHARE_ALIKE = frozenset({"CC-BY-SA-3.0", "CC-BY-SA-4.0"})


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str


def licence_verdict(spdx: str | None, share_alike: bool = True) -> Verdict:
    """Whether images under `spdx` may train redistributed weights, with the reason in a few words."""
    if not spdx:
        return Verdict(False, "no licence given")
    if spdx in PERMISSIVE:
        return Verdict(True, "permissive")
    if spdx in SHARE_ALIKE:
        if share_alike:
            return Verdict(True, "share-alike (see clipdesk/data/licences.py)")
        return Verdict(False, "share-alike excluded (--no-share-alike)")
    parts = spdx.upper().split("-")
    if "NC" in parts:
        return Verdict(False, "non-commercial")
    if "ND" in parts:
        return Verdict(False, "no derivatives")
    if parts[0] in {"GPL", "LGPL", "AGPL"}:
        return Verdict(False, "GPL family (copyleft)")
    return Verdict(False, "not on the reviewed list")
