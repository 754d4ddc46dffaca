"""The explanation report renders in headless Chromium with no script error and loads nothing from outside.

A probe script is injected at the top of ``<head>`` of a copy of the report, with a Content-Security-Policy
that forbids every network load (any attempt is a ``securitypolicyviolation``, counted as an error). It
collects window errors, unhandled rejections and ``console.error``; 1.5 s (virtual time) after load it
writes a marker element with the JSON of the errors, the number of rendered plotly graphs and each graph's
number of animation frames (what its slider steps through); ``--dump-dom`` prints it. (``Plotly.animate``
never resolves under ``--virtual-time-budget``, so slider moves are not exercised here.)
Negative controls: an injected ``throw`` and an external image are both detected.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from stia_kit.explain.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package `chromium`; .ci/run installs it)")

T, H, W = 4, 16, 16
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
       "font-src data:")
PROBE = """<meta http-equiv="Content-Security-Policy" content="%s">
<script>
window.__errs = [];
addEventListener('error', e => __errs.push('error: ' + (e.message || e.type)));
addEventListener('unhandledrejection', e => __errs.push('rejection: ' + String(e.reason)));
document.addEventListener('securitypolicyviolation', e => __errs.push('csp: ' + e.blockedURI + ' ' + e.violatedDirective));
const _ce = console.error; console.error = (...a) => { __errs.push('console: ' + a.join(' ')); _ce(...a); };
addEventListener('load', () => setTimeout(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const frames = plots.map(d => (d._transitionData && d._transitionData._frames || []).length);
  const graphs = plots.filter(d => d.querySelector('.main-svg')).length;
  const m = document.createElement('pre'); m.id = 'stia-probe';
  m.textContent = JSON.stringify({errors: __errs, graphs: graphs, frames: frames});
  document.body.appendChild(m);
}, 1500));
</script>""" % CSP


def _report(path: Path) -> tuple[Path, int, list[int]]:
    """A report with two methods and one attention record per kind; returns (path, figures, frame counts)."""
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    maps = {"saliency": rng.random((T, H, W)), "gradcam": rng.random((T, 4, 4))}
    attention = [("eca", "channel", rng.random(8)), ("fsam", "spatiotemporal", rng.random((1, T, 4, 4))),
                 ("tda", "temporal_matrix", rng.random((T, T))), ("sda", "spatial_matrix", rng.random((16, 16))),
                 ("axial", "axial", rng.random((5, 4, 4))), ("alpha", "segment", rng.random(3)),
                 ("msa", "segment_spatial", rng.random((3, 2, 4, 4))), ("mha", "sequence", rng.random((2, 5, 5)))]
    write_report(path, title="browser test", clip=clip, classes=list("abcdef"), probs=rng.dirichlet(np.ones(6)),
                 label=2, maps=maps, attention=attention, notes=["a note"])
    # clip strip (0 frames), maps slider (T), then the attention figures in order
    frames = [0, T, 0, T, 0, 0, 0, 0, 3, 1 + 2]
    return path, 2 + len(attention), frames


def _render(html: str, tmp: Path) -> dict:
    page = tmp / "probe.html"
    page.write_text(html.replace("<head>", "<head>\n" + PROBE, 1))
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=90)
    found = re.search(r'<pre id="stia-probe">(.*?)</pre>', out.stdout, re.S)
    assert found, f"probe marker missing (chromium rc {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def test_report_renders_without_errors(tmp_path: Path) -> None:
    path, n_figures, frames = _report(tmp_path / "report.html")
    html = path.read_text()
    assert html.count('class="plotly-graph-div"') == n_figures
    result = _render(html, tmp_path)
    assert result["errors"] == []
    assert result["graphs"] == n_figures
    assert result["frames"] == frames


def test_negative_controls_are_detected(tmp_path: Path) -> None:
    path, n_figures, _ = _report(tmp_path / "report.html")
    html = path.read_text().replace("</body>", '<script>throw new Error("stia-negative-control")</script>\n'
                                              '<img src="https://example.invalid/x.png">\n</body>')
    result = _render(html, tmp_path)
    assert any("stia-negative-control" in e for e in result["errors"]), result["errors"]
    assert any(e.startswith("csp: https://example.invalid") for e in result["errors"]), result["errors"]
    assert result["graphs"] == n_figures  # the failing script at the end does not stop the figures
