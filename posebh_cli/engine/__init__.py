"""Loops only: training (stages), evaluation and prediction over the library's pieces."""
