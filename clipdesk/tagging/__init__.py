"""Tagging: label sets, zero-shot and few-shot classification, the user's tags, XMP/CSV export.

Plain Python and numpy (no Qt, no torch), used by the CLI and the GUI alike. Where to start:

- tags.py         add/remove tags, counts, suggestions grouped by label, accept/reject (GUI API)
- label_sets.py   named label sets with their templates, stored in the library
- suggest.py      run a label set over the library (zero-shot, refined by confirmed tags)
- classify.py     classify files straight from disk
- prompts.py, templates.py, calibration.py, classifier.py, zero_shot.py, few_shot.py: the scoring
- xmp.py, xmp_export.py, keywords.py, csv_export.py, copy_export.py: interoperability

docs/tagging.md explains the scores, the "none of these" outcome and the few-shot method.
"""
