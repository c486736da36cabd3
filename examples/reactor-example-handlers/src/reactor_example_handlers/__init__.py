"""Example handlers for mongo-reactor, registered under the ``reactor.handlers`` entry points.

``wordcount`` is light work in a thread; ``invert_image`` is CPU work in the reactor's process
pool, which can kill it on timeout. A process handler must be a top-level function of an
importable module (the pool pickles a reference to it), and so must everything it returns.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from reactor import InputError, InvalidArguments, JobContext, handler

__all__ = ["count_words", "invert_image", "wordcount"]
__version__ = "0.1.0"

# Letters and digits, with inner apostrophes (straight or typographic) and hyphens: "don't".
_WORD = re.compile("[^\\W_]+(?:['\u2019-][^\\W_]+)*")
_DEFAULT_MAX_PIXELS = 100_000_000


def count_words(text: str, top: int = 10) -> dict[str, Any]:
    """Count the words of ``text``, ignoring case: total, distinct, the ``top`` most common."""
    counts = Counter(word.lower() for word in _WORD.findall(text))
    return {
        "words": sum(counts.values()),
        "distinct": len(counts),
        "top": [[word, n] for word, n in counts.most_common(top)],
    }


@handler(runs="thread", timeout_s=30, version="1")
def wordcount(text: str | None = None, path: Path | None = None, top: int = 10) -> dict[str, Any]:
    """Count words in ``text``, or in the UTF-8 file ``path`` inside the job's directory."""
    if top < 0:
        raise InvalidArguments("'top' must not be negative")
    if text is not None and path is None:
        return count_words(text, top)
    if path is not None and text is None:
        return count_words(_read_text(path), top)
    raise InvalidArguments("give exactly one of 'text' or 'path'")


@handler(runs="process", timeout_s=120, version="1")
def invert_image(ctx: JobContext, image: Path, output: str = "inverted.png") -> dict[str, Any]:
    """Write the photographic negative of ``image`` to ``output`` in the job's directory."""
    import cv2  # imported in the pool process, not when the reactor loads its handlers
    from PIL import Image

    max_pixels = int(ctx.settings.get("max_image_pixels", _DEFAULT_MAX_PIXELS))
    try:
        with Image.open(image) as probe:  # reads the header only: size before decoding
            width, height = probe.size
    except FileNotFoundError:
        raise InputError(f"no such file in the job directory: {image.name}") from None
    except OSError as exc:
        raise InputError(f"{image.name} is not an image: {exc}") from None
    if width * height > max_pixels:
        raise InputError(f"{image.name} has {width * height} pixels, more than {max_pixels}")

    pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputError(f"OpenCV cannot decode {image.name}")
    inverted = cv2.bitwise_not(pixels)
    if _channels(pixels) == 4:
        inverted[..., 3] = pixels[..., 3]  # a negative keeps its transparency
    target = ctx.path(output)
    if not cv2.imwrite(str(target), inverted):
        raise InputError(f"OpenCV cannot write {output!r} (unknown extension?)")
    ctx.log.info("image_inverted", width=width, height=height, output=output)
    return {"output": output, "width": width, "height": height, "channels": _channels(pixels)}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file in the job directory: {path.name}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 text: {exc.reason}") from None


def _channels(pixels: Any) -> int:
    return 1 if pixels.ndim == 2 else int(pixels.shape[2])
