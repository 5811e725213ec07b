"""Backbones, heads, prototype table and the composed PoseBH model."""
