"""Where stories come from: polled sources (files now; http is planned) and push."""
