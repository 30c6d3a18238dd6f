"""Released weights in one command, for users who are online: download, verify, convert, cache.

``pcdkit weights fetch score-denoise`` downloads the checkpoint released with score-based
point-cloud denoising (Luo & Hu, ICCV 2021; MIT licence) from its public GitHub location,
checks a pinned SHA-256, converts it to pcdkit's safe format and keeps it in the user cache
(``$PCDKIT_CACHE`` or ``~/.cache/pcdkit``, folder ``weights``). ``--from FILE`` does the same
offline with a copy the user has. Afterwards the name ``score-denoise-reference`` may stand
wherever a checkpoint path is expected (pipelines, ``--checkpoint``, ``pcdkit.denoise``).
Nothing is ever downloaded unless this command is run.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pcdkit.errors import PcdkitError


@dataclass(frozen=True)
class Release:
    """A released checkpoint: where it lives, its digest, the name it is cached under."""

    model: str
    alias: str
    url: str
    sha256: str
    credit: str


RELEASES = {
    "score-denoise": Release(
        model="score-denoise", alias="score-denoise-reference",
        url="https://github.com/luost26/score-denoise/raw/"
            "bdf0eab411afcf1e1236591c41009ac9916e8d68/pretrained/ckpt.pt",
        sha256="d8aa53cfc92161581199170bce6e326b29f70208cc0c4dfe929f87aeeef365bc",
        credit="Shitong Luo and Wei Hu, Score-Based Point Cloud Denoising, ICCV 2021; "
               "MIT licence, Copyright (c) 2021 Shitong Luo"),
}
ALIASES = {r.alias: r for r in RELEASES.values()}
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Folder of fetched, converted weights."""
    from pcdkit.datasets.folders import default_cache_dir

    return default_cache_dir() / "weights"


def cached_path(alias: str) -> Path:
    """Where the converted checkpoint of ``alias`` is (or will be) kept."""
    return cache_dir() / f"{alias}.pt"


def resolve(checkpoint: str | Path) -> Path:
    """A checkpoint path, or the cached file of a release alias (an error if not fetched)."""
    text = str(checkpoint)
    if text in ALIASES and not Path(text).exists():
        path = cached_path(text)
        if not path.is_file():
            model = ALIASES[text].model
            raise PcdkitError(f"checkpoint {text!r} is not fetched yet: run `pcdkit weights "
                              f"fetch {model}` (online) or `pcdkit weights fetch {model} --from "
                              "FILE` with the released file")
        return path
    return Path(checkpoint)


def fetch(model: str, source: Path | None = None, url: str | None = None,
          timeout: float = 60.0, quiet: bool = True) -> Path:
    """Download (or copy ``source``), verify and convert the release of ``model``; returns the
    cached pcdkit checkpoint. A failed or mismatching download leaves nothing in the cache."""
    from pcdkit.backbones.score_denoise.convert import convert_reference

    if model not in RELEASES:
        raise PcdkitError(f"weights: no release known for {model!r}; known: "
                          f"{', '.join(RELEASES)}")
    release = RELEASES[model]
    target = cached_path(release.alias)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f".{release.alias}.{os.getpid()}.download"
    try:
        digest = _copy(source, raw) if source is not None else _download(
            url or release.url, raw, timeout, quiet)
        if digest != release.sha256:
            raise PcdkitError(f"weights: {source or url or release.url} has SHA-256 {digest}, "
                              f"expected {release.sha256}; not the released file, nothing "
                              "cached")
        convert_reference(raw, target, overwrite=True)
    finally:
        raw.unlink(missing_ok=True)
    return target


def _copy(source: Path, dst: Path) -> str:
    if not Path(source).is_file():
        raise PcdkitError(f"--from {source}: file not found")
    shutil.copyfile(source, dst)
    return _sha256(dst)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dst: Path, timeout: float, quiet: bool) -> str:
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dst, "wb") as fh:
            expected = resp.headers.get("Content-Length")
            got = 0
            for block in iter(lambda: resp.read(_CHUNK), b""):
                fh.write(block)
                h.update(block)
                got += len(block)
                if not quiet:
                    print(f"\r{url}: {got / 2**20:.1f} MiB", end="", flush=True)
            if not quiet:
                print()
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise PcdkitError(f"weights: cannot download {url} ({reason}); check the network, or "
                          "use --from FILE with a copy of the released file") from None
    if expected is not None and got != int(expected):
        raise PcdkitError(f"weights: download of {url} stopped after {got:,} of "
                          f"{int(expected):,} bytes; nothing cached, try again")
    return h.hexdigest()
