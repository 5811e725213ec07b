"""Losses of PoseBH (METHOD.md §3): keypoint heatmaps, prototypes (PPC/PPD/phm) and CSS."""
