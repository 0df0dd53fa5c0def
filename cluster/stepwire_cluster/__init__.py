"""Spread a `stepwire run` over the nodes of a Ray cluster (python -m stepwire_cluster run --ray ADDR ...).

The plan, the recording's resume rules and the report stay in the Rust binary (`stepwire run
--print-plan`, `--only-episodes`, `--report-from`); this package only hands batches of planned
episodes to Ray tasks and appends what they played to the one recording, on the driver.
"""
