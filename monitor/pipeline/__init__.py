"""The pipeline: one poll of a source, from the fetch to the stored alerts."""
