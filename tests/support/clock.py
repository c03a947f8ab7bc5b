"""Read back the wall clock that the clock camera (`rtsp_clock_server.py`) draws into its frames:
in Python from a decoded picture (`read_clock`), and in the browser from a `<video>` element, frame
by frame as it is presented, or from the live wall's fallback `<canvas>`, picture by picture as it
is drawn (`CLOCK_JS`, `latencies`). The difference between the reader's clock
and the frame's is the latency from the camera to the reader; both run on this machine, so they
share one clock.

The layout (two rows of 16 blocks below the top-left corner, sized as shares of the frame so that
any scale of the whole picture reads) comes from `rtsp_clock_server`, the one place that defines it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import numpy as np

from tests.support.rtsp_clock_server import BITS, CELL, COLUMNS, MODULO, ORIGIN, ROWS, cells, now_ms, pattern

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["CLOCK_JS", "MODULO", "elapsed_ms", "latencies", "now_ms", "pattern", "read_clock"]

MIN_CONTRAST = 64.0
"""Grey levels between the white and the black marker below which the markers are "not found": a
frame without the clock (or one darkened past reading) gives None, never a made-up time."""


_BGR_TO_GREY = np.array([0.114, 0.587, 0.299])


def elapsed_ms(clock: int, now: int | None = None) -> int:
    """Milliseconds from `clock` to `now` (default: the wall clock), both modulo 2^28, signed: a
    reading a little ahead of the reader's clock comes out negative, not as 74 hours.

    >>> elapsed_ms(MODULO - 10, 5)
    15
    >>> elapsed_ms(20, 5)
    -15
    """
    now = now_ms() if now is None else now
    diff = (now - clock) % MODULO
    return diff - MODULO if diff >= MODULO // 2 else diff


def _decode(levels: list[float]) -> int | None:
    """The value the 32 blocks' mean grey levels show, or None (see `read_clock`)."""
    white, black = levels[0], levels[COLUMNS]
    if white - black < MIN_CONTRAST:
        return None
    threshold, margin = (white + black) / 2, (white - black) / 4
    if any(abs(level - threshold) < margin for level in levels):
        return None  # a block neither black nor white: a smeared or half-decoded picture
    bits = [level > threshold for level in levels]
    value_bits = bits[1:COLUMNS] + bits[COLUMNS + 1 : COLUMNS + 1 + BITS - (COLUMNS - 1)]
    value = 0
    for bit in value_bits:
        value = value << 1 | bit
    return value if pattern(value) == bits else None


def read_clock(image: np.ndarray) -> int | None:
    """The time (ms since the epoch, modulo 2^28) that the clock camera drew into `image` (BGR or
    grey, the whole camera picture at any scale), or None when the markers are not found or a block
    or a parity bit does not agree.

    >>> picture = np.full((180, 320), 128, np.uint8)
    >>> read_clock(picture) is None
    True
    """
    h, w = image.shape[:2]
    levels = []
    for x0, y0, x1, y1 in cells(w, h):
        dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
        block = image[y0 + dy : y1 - dy, x0 + dx : x1 - dx]
        if block.size == 0:
            return None  # a picture too small to hold the blocks
        # Grey as BT.601 weighs BGR, averaged over the block's middle: the means are the same.
        means = block.reshape(-1, 1 if image.ndim == 2 else image.shape[2]).mean(axis=0)
        levels.append(float(means[0] if image.ndim == 2 else means[:3] @ _BGR_TO_GREY))
    return _decode(levels)


_CONSTANTS = (
    f"const COLUMNS = {COLUMNS}, ROWS = {ROWS}, BITS = {BITS}, MODULO = {MODULO};\n"
    f"const ORIGIN = {json.dumps(list(ORIGIN))}, CELL = {json.dumps(list(CELL))}, MIN_CONTRAST = {MIN_CONTRAST};\n"
)
"""The layout, from `rtsp_clock_server`, as JavaScript."""

CLOCK_JS = (
    "(() => {\n"
    + _CONSTANTS
    + r"""  // floor(x + 0.5), as rtsp_clock_server._edge: the same pixels as the Python reader.
  const edge = (size, start, step, i) => Math.floor(size * (start + i * step) + 0.5);

  function levels(pixels, stride, left, top, w, h) {
    const out = [];
    for (let row = 0; row < ROWS; row++) {
      const y0 = edge(h, ORIGIN[1], CELL[1], row) - top, y1 = edge(h, ORIGIN[1], CELL[1], row + 1) - top;
      for (let col = 0; col < COLUMNS; col++) {
        const x0 = edge(w, ORIGIN[0], CELL[0], col) - left, x1 = edge(w, ORIGIN[0], CELL[0], col + 1) - left;
        const dx = Math.floor((x1 - x0) / 4), dy = Math.floor((y1 - y0) / 4);
        let sum = 0, n = 0;
        for (let y = y0 + dy; y < y1 - dy; y++) {
          for (let x = x0 + dx; x < x1 - dx; x++) {
            const i = (y * stride + x) * 4;
            sum += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
            n++;
          }
        }
        out.push(n ? sum / n : 0);
      }
    }
    return out;
  }

  function decode(lv) {
    const white = lv[0], black = lv[COLUMNS];
    if (white - black < MIN_CONTRAST) return null;
    const threshold = (white + black) / 2, margin = (white - black) / 4;
    if (lv.some((l) => Math.abs(l - threshold) < margin)) return null;
    const bits = lv.map((l) => l > threshold);
    const valueBits = bits.slice(1, COLUMNS).concat(bits.slice(COLUMNS + 1, COLUMNS + 1 + BITS - (COLUMNS - 1)));
    let value = 0;
    for (const b of valueBits) value = value * 2 + (b ? 1 : 0);
    const parity = (xs) => xs.filter(Boolean).length % 2 === 1;
    if (bits[0] !== true || bits[COLUMNS] !== false) return null;
    if (parity(valueBits.slice(0, 14)) !== bits[2 * COLUMNS - 2]) return null;
    if (parity(valueBits.slice(14)) !== bits[2 * COLUMNS - 1]) return null;
    return value;
  }

  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });

  // The clock in a picture `source` of w x h pixels (a <video> or a <canvas>): only the blocks'
  // rectangle is copied, at its own size, so no scaling blurs them.
  function read(source, w, h) {
    const left = edge(w, ORIGIN[0], CELL[0], 0), top = edge(h, ORIGIN[1], CELL[1], 0);
    const right = edge(w, ORIGIN[0], CELL[0], COLUMNS), bottom = edge(h, ORIGIN[1], CELL[1], ROWS);
    const cw = right - left, ch = bottom - top;
    if (cw <= 0 || ch <= 0) return null;
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
    }
    context.drawImage(source, left, top, cw, ch, 0, 0, cw, ch);
    const pixels = context.getImageData(0, 0, cw, ch).data;
    return decode(levels(pixels, cw, left, top, w, h));
  }

  // Calls back(value, now, shown, presented) for each picture `source` shows: a <video>'s frames
  // as they are presented (requestVideoFrameCallback), or the pictures the wall's fallback draws
  // on a tile's <canvas>, which dispatches a "frame" event after each draw. `value` is the
  // picture's clock (null when it does not read), `now` Date.now() as the picture goes to the
  // screen, `shown` a count of the pictures presented, `presented` when the browser says it was.
  // A canvas's picture is read as the event fires (the next draw replaces it) and timed at the
  // next animation frame, the rendering step in which video frame callbacks run too: both
  // paths stop the clock at the same point, the picture's first paint. Returns what stops it.
  function follow(source, back) {
    let on = true;
    if (source instanceof HTMLCanvasElement) {
      let shown = 0;
      const onDraw = () => {
        const value = read(source, source.width, source.height);
        const n = ++shown;
        requestAnimationFrame(() => {
          if (!on) return;
          const now = Date.now();
          back(value, now, n, now);
        });
      };
      source.addEventListener("frame", onDraw);
      return () => { on = false; source.removeEventListener("frame", onDraw); };
    }
    const onFrame = (_now, meta) => {
      if (!on) return;
      // Date.now() as the callback runs: the frame has just been handed to the compositor.
      const now = Date.now();
      const presented = performance.timeOrigin + (meta.presentationTime ?? meta.expectedDisplayTime);
      back(read(source, source.videoWidth, source.videoHeight), now, meta.presentedFrames, presented);
      source.requestVideoFrameCallback(onFrame);
    };
    source.requestVideoFrameCallback(onFrame);
    return () => { on = false; };
  }

  const clock = {
    samples: [],   // Date.now() - clock, ms, one per presented frame that reads
    frames: [],    // {clock, now, presented}: now and presented in ms since the epoch
    misses: 0,     // presented frames whose clock did not read
    halt: null,
    read,
    follow,
    elapsed(value, now) {
      const diff = (((now % MODULO) - value) % MODULO + MODULO) % MODULO;
      return diff >= MODULO / 2 ? diff - MODULO : diff;
    },
    start(selector) {
      const source = document.querySelector(selector);
      if (!source) throw new Error("no <video> or <canvas> matches " + selector);
      this.stop();
      this.samples = [];
      this.frames = [];
      this.misses = 0;
      this.halt = follow(source, (value, now, _shown, presented) => {
        if (value === null) {
          this.misses++;
        } else {
          this.samples.push(this.elapsed(value, now));
          this.frames.push({ clock: value, now, presented });
        }
      });
    },
    stop() {
      if (this.halt) this.halt();
      this.halt = null;
      return this.samples;
    },
  };
  if (window.__lanterneClock) window.__lanterneClock.stop(); // injected again: one loop at a time
  window.__lanterneClock = clock;
})();
"""
)
"""Injected into a page (`page.evaluate(CLOCK_JS)`: the DevTools protocol, which the console's CSP
does not govern), it defines `window.__lanterneClock`: `start(selector)` reads the clock of every
frame the `<video>` presents (`requestVideoFrameCallback`), or of every picture the wall's
fallback draws on the `<canvas>` (its "frame" event), and keeps `Date.now() - clock` in `samples`;
`stop()` returns them; `read(source, w, h)` reads one picture; `follow(source, back)` is the loop
both use, for a caller that keeps its own account (`benchmarks/live_wall.py`)."""


def latencies(page: Page, selector: str, seconds: float) -> list[float]:
    """Camera-to-page latency in ms of every frame the `<video>` (or the fallback's `<canvas>`) at
    `selector` presents during `seconds`: when the frame is current in the page minus when the
    camera pushed it."""
    page.evaluate(CLOCK_JS)
    page.evaluate("(selector) => window.__lanterneClock.start(selector)", selector)
    time.sleep(seconds)
    return [float(x) for x in page.evaluate("() => window.__lanterneClock.stop()")]
