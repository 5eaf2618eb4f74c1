"""Where stories come from: polled sources (`file`, `http`); push arrives through the API."""
