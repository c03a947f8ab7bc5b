"""The analysis engine, in the order a frame flows through it: `capture` (files, RTSP), `motion`
(the gate and optical flow), `detectors` (plugins chosen by config), `tracking` (short-lived random
ids, one camera), the rules (`lanterne.rules`) driven by `analyser`, `anonymize` and `evidence`
for every pixel that leaves memory, `statistics` for the counts-only mode, `evaluation` against
ground truth. Knows nothing of accounts, the console or the observatory."""
