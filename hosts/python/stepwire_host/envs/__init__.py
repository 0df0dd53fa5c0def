"""Gymnasium-style adapters of real text environments, shaped for `run_episode`."""
