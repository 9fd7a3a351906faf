"""Few-shot sound event detection in long recordings (the DCASE Task 5 protocol): annotations, the official
metric, frame features, detectors and events."""
