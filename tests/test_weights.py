"""Released weights in one command: download from a loopback server, verify, convert, cache."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from pcdkit import weights
from pcdkit.backbones.score_denoise.backbone import load_network
from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.cli import main
from pcdkit.errors import PcdkitError


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> bytes:
    """A legacy-format checkpoint whose digest stands in for the pinned one."""
    torch.manual_seed(0)
    src = tmp_path / "ckpt.pt"
    torch.save({"state_dict": ScoreDenoiseNet().state_dict()}, src)
    data = src.read_bytes()
    real = weights.RELEASES["score-denoise"]
    fake = weights.Release(real.model, real.alias, real.url, hashlib.sha256(data).hexdigest(),
                           real.credit)
    monkeypatch.setitem(weights.RELEASES, "score-denoise", fake)
    monkeypatch.setitem(weights.ALIASES, real.alias, fake)
    return data


@pytest.fixture
def server(release: bytes) -> Iterator[str]:
    """http://127.0.0.1:PORT serving /good, /truncated (announces more than it sends)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = release
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if self.path == "/good" else body[: len(body) // 3])

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _cache(cache_dir: Path) -> list[str]:
    folder = cache_dir / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_fetch_verifies_converts_caches_and_the_alias_resolves(
        server: str, cache_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["weights", "fetch", "score-denoise", "--url", f"{server}/good"]) == 0
    assert "credit: Shitong Luo" in capsys.readouterr().out
    assert _cache(cache_dir) == ["score-denoise-reference.pt"]
    net = load_network("score-denoise-reference")  # the alias, as pipelines and the CLI use it
    assert sum(p.numel() for p in net.parameters()) == 187_291
    cloud = cache_dir / "c.npy"
    np.save(cloud, np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
    assert main(["denoise", str(cloud), "-o", str(cache_dir / "o.xyz"),
                 "--checkpoint", "score-denoise-reference"]) == 0


def test_wrong_hash_truncation_and_a_dead_server_leave_nothing_cached(
        server: str, release: bytes, tmp_path: Path, cache_dir: Path,
        capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(PcdkitError, match="stopped after"):
        weights.fetch("score-denoise", url=f"{server}/truncated")
    other = tmp_path / "other.pt"
    other.write_bytes(release + b"x")
    with pytest.raises(PcdkitError, match="SHA-256"):
        weights.fetch("score-denoise", source=other)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/good"
    assert main(["weights", "fetch", "score-denoise", "--url", dead]) == 2
    assert "cannot download" in capsys.readouterr().err
    assert _cache(cache_dir) == []
    with pytest.raises(PcdkitError, match="not fetched yet"):
        load_network("score-denoise-reference")


def test_offline_from_file_and_pipelines_name_the_alias(
        release: bytes, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from pcdkit.core import pipeline

    cfg = {"job": "evaluate", "dataset": {"plugin": "procedural", "resolution": 100},
           "backbone": {"plugin": "score-denoise", "checkpoint": "score-denoise-reference"}}
    with pytest.raises(PcdkitError, match="not fetched yet"):
        pipeline.validate(cfg)
    copy = tmp_path / "ckpt.pt"
    copy.write_bytes(release)
    assert main(["weights", "fetch", "score-denoise", "--from", str(copy)]) == 0
    pipe = pipeline.validate(cfg)
    assert pipe.slots["backbone"].settings["checkpoint"] == cache_dir / "weights" / (
        "score-denoise-reference.pt")
