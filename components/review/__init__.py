"""Review tool: offline diff, preview explanation and PR summaries."""
