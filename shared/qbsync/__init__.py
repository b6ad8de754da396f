"""qbsync: a serverless QuickBooks (Desktop + Online) integration backend."""

__version__ = "0.1.0"
