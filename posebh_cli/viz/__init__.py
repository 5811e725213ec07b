"""Drawing: skeleton overlays (OpenCV) and prototype figures (OpenCV + numpy, no matplotlib)."""
