"""The check every downloaded model passes before it is registered: both towers run on real photos and real
labels, give finite values of one width, and (unless the catalog entry opts out) name each of a handful of
openly licensed photographs (resources/known-answer/, scikit-image's sample images) correctly among the
set's labels. A model that cannot tell a cat from a rocket is broken, whatever its hashes say."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipdesk import paths
from clipdesk.errors import ModelPackageError
from clipdesk.runtime.package import ModelPackage

PROMPT = "a photo of a {}."


@dataclass(frozen=True)
class KnownAnswerReport:
    photos: int
    correct: int
    lines: list[str]  # one per photo: file, expected, named, score
    photos_per_second: float  # the image tower on this machine, decoding included (a small sample)
    provider: str  # "CPU" or "CUDA"

    def summary(self) -> str:
        return f"named {self.correct} of {self.photos} known photos correctly"

    def speed(self) -> str:
        return f"about {self.photos_per_second:,.0f} photos/s on this machine's {self.provider}"


def known_answer_set() -> tuple[list[Path], list[str], list[str]]:
    """(photo files, their labels, all labels) of the shipped set."""
    folder = paths.resources_dir() / "known-answer"
    data = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    files = [folder / item["file"] for item in data["photos"]]
    return files, [item["label"] for item in data["photos"]], list(data["labels"])


def check_model(package: ModelPackage, *, known_answer: bool = True, device: str = "auto") -> KnownAnswerReport:
    """Run both towers on the known-answer set; raise ModelPackageError (with the figures) when it fails."""
    from clipdesk.runtime.encoders import ClipModel

    from clipdesk.runtime.encoders import provider_label

    files, expected, labels = known_answer_set()
    model = ClipModel(package, device=device)
    try:
        model.image.encode_files(files[:1], normalize=False)  # sessions made and warmed before the timing
        started = time.perf_counter()
        images = model.image.encode_files(files, batch_size=8, normalize=False)
        seconds = time.perf_counter() - started
        texts = model.text.encode([PROMPT.format(label) for label in labels], normalize=False)
    except ModelPackageError:
        raise
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's failures on a malformed graph are not typed
        raise ModelPackageError(f"{package.path}: the model fails on real input "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    width = package.manifest.embed_dim
    for what, values in (("image", images), ("text", texts)):
        if values.ndim != 2 or values.shape[1] != width:
            raise ModelPackageError(f"{package.path}: the {what} tower gives {values.shape[1:]} values, "
                                    f"the manifest says {width}")
        if not np.isfinite(values).all():
            raise ModelPackageError(f"{package.path}: the {what} tower gives non-finite values on real input")
    from clipdesk.runtime.encoders import l2_normalize

    scores = l2_normalize(images) @ l2_normalize(texts).T
    named = scores.argmax(axis=1)
    lines = [f"{path.name}: expected {want!r}, named {labels[index]!r} ({scores[row, index]:.3f})"
             for row, (path, want, index) in enumerate(zip(files, expected, named))]
    right = [labels[index] == want for want, index in zip(expected, named)]
    report = KnownAnswerReport(len(files), sum(right), lines, len(files) / max(seconds, 1e-9),
                               provider_label(model.image.providers))
    if known_answer and not all(right):
        wrong = "; ".join(line for line, ok in zip(lines, right) if not ok)
        raise ModelPackageError(f"{package.name} fails the known-answer check: {report.summary()} ({wrong}); "
                                "not installed")
    return report
