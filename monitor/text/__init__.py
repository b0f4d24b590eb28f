"""Text: article extraction, normalisation, segmentation into words, and safe text."""
