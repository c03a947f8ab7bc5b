"""The browser half of the live wall's latency measurement (issue 14): `CLOCK_JS`, injected into a
page in Debian's chromium, reads the clock camera's blocks exactly as the Python reader does, and
timing a `<video>` that plays a canvas drawing the clock live (`canvas.captureStream()`, no network,
no codec), or that canvas itself as the wall's fallback tile draws (a "frame" event after each
picture), gives small positive latencies: the instrument itself adds next to nothing to what it
measures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.support.browser import chromium, wait_until
from tests.support.clock import CLOCK_JS, MODULO, latencies, pattern
from tests.support.rtsp_clock_server import BITS, cells

# A page that draws the clock on a 640x360 canvas ten times a second, as the camera does, and
# plays the canvas's stream in a <video>. The blocks' rectangles come from `cells` (Python); the bits
# are computed here in JavaScript, as `pattern` does, and the reader must agree with both.
PAGE = """<!doctype html>
<html><body>
<canvas id="camera" width="640" height="360"></canvas>
<video id="tile" autoplay muted playsinline width="640" height="360"></video>
<script>
@CONSTANTS@
const canvas = document.getElementById("camera"), context = canvas.getContext("2d");
function pattern(value) {
  const bits = [];
  for (let i = BITS - 1; i >= 0; i--) bits.push(Math.floor(value / 2 ** i) % 2 === 1);
  const odd = (xs) => xs.filter(Boolean).length % 2 === 1;
  return [true, ...bits.slice(0, 15), false, ...bits.slice(15), odd(bits.slice(0, 14)), odd(bits.slice(14))];
}
function draw() {
  context.fillStyle = "#808080";
  context.fillRect(0, 0, 640, 360);
  pattern(Date.now() % MODULO).forEach((white, i) => {
    const [x0, y0, x1, y1] = CELLS[i];
    context.fillStyle = white ? "#ffffff" : "#000000";
    context.fillRect(x0, y0, x1 - x0, y1 - y0);
  });
  canvas.dispatchEvent(new Event("frame"));  // as the wall's fallback tile does after each draw
}
draw();
setInterval(draw, 100);
document.getElementById("tile").srcObject = canvas.captureStream();
</script>
</body></html>
""".replace("@CONSTANTS@", f"const CELLS = {json.dumps(cells(640, 360))}, BITS = {BITS}, MODULO = {MODULO};")

# Draws Python's `pattern(value)` into a fresh canvas of the given size and reads it back.
READ_STILL = """([blocks, bits, w, h]) => {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  context.fillStyle = "#808080";
  context.fillRect(0, 0, w, h);
  blocks.forEach(([x0, y0, x1, y1], i) => {
    context.fillStyle = bits[i] ? "#ffffff" : "#000000";
    context.fillRect(x0, y0, x1 - x0, y1 - y0);
  });
  return window.__lanterneClock.read(canvas, w, h);
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(PAGE)
        yield page


@pytest.mark.parametrize("value", [0, 5, 123_456_789, MODULO - 1])
@pytest.mark.parametrize("size", [(640, 360), (320, 180)])
def test_the_page_reads_what_python_draws(page: Page, value: int, size: tuple[int, int]) -> None:
    page.evaluate(CLOCK_JS)
    args = [cells(*size), pattern(value), *size]
    assert page.evaluate(READ_STILL, args) == value


def test_a_picture_without_the_clock_reads_as_null(page: Page) -> None:
    page.evaluate(CLOCK_JS)
    blank = [cells(640, 360), [False] * 32, 640, 360]
    assert page.evaluate(READ_STILL, blank) is None
    flipped = pattern(123_456_789)
    flipped[5] = not flipped[5]  # one bit wrong: the parity says so
    assert page.evaluate(READ_STILL, [cells(640, 360), flipped, 640, 360]) is None


def test_latencies_of_a_live_canvas_are_small_and_positive(page: Page) -> None:
    wait_until(page, "document.getElementById('tile').readyState >= 2", timeout=10)
    samples = latencies(page, "#tile", 3.0)
    assert len(samples) >= 15, f"about 30 frames presented in 3 s at 10 fps: {samples}"
    assert all(0 <= s < 200 for s in samples), samples
    misses = page.evaluate("window.__lanterneClock.misses")
    assert misses <= 2, f"nearly every presented frame reads ({misses} did not)"


def test_latencies_of_a_canvas_drawn_as_the_fallback_draws_are_small_and_positive(page: Page) -> None:
    """The canvas path: read as the "frame" event fires, timed at the next animation frame, so a
    sample is the wait for the paint (one 60 Hz frame at most) and never negative."""
    samples = latencies(page, "#camera", 3.0)
    assert len(samples) >= 15, f"about 30 pictures drawn in 3 s at 10 fps: {samples}"
    assert all(0 <= s < 200 for s in samples), samples
    assert page.evaluate("window.__lanterneClock.misses") == 0, "every drawn picture reads"
