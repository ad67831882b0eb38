"""Qt threading: the ModelHost and its single worker thread."""
