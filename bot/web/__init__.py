"""The HTTP door: push ingest, Slack's endpoint, unsubscribe pages, health and metrics.
"""
