"""Heatmap codecs: MSRA/UDP Gaussian encoders, shift/UDP/DARK-UDP decoders, flip-back and the map
from heatmap pixels back to image pixels. All coordinates are (x, y) in pixels."""

from __future__ import annotations

from posebh_cli.codecs.coordinates import heatmap_to_image
from posebh_cli.codecs.decode import DECODE_METHODS, decode, heatmap_argmax
from posebh_cli.codecs.encode import ENCODE_METHODS, encode, heatmap_stride
from posebh_cli.codecs.flip import flip_back

__all__ = [
    "DECODE_METHODS",
    "ENCODE_METHODS",
    "decode",
    "encode",
    "flip_back",
    "heatmap_argmax",
    "heatmap_stride",
    "heatmap_to_image",
]
