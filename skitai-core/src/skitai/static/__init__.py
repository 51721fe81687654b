"""Static files: safe path resolution, conditional requests, ranges, sendfile."""
