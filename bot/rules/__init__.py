"""The rules: pure decisions with their reasons, no I/O and no clock of their own.

`gate` is the action-item rule; `targets` turns routes and readers into targets and decides per
target; `batching` is the leading-edge/trailing-batch decision and quiet hours; `digest_clock`
says when a daily digest is due.
"""
