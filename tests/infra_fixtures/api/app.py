"""A two-route Chalice app standing in for the real API."""

from chalice import Chalice

app = Chalice(app_name="qbsync-fixture")


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "app": "fixture"}
