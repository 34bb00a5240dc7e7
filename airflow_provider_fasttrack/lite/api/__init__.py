"""HTTP routes of backendai-lite, one module per manager API area."""
