"""Metrics: OKS keypoint AP/AR (pycocotools or our exact vectorised path), PCK/PCKh/AUC/EPE,
COCO post-processing (rescoring, OKS-NMS), and model-free scoring of results files."""
