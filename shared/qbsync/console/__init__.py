"""The admin console (issue 10): server-rendered pages for a tenant admin, over the public REST operations."""
