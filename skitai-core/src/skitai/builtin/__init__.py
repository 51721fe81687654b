"""The core's own features, registered through the same hooks as any third-party plugin."""
