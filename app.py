"""The Energy Management System backend: a routing table into `chalicelib`."""

from chalice import Chalice, Response

from chalicelib import http
from chalicelib.platform import events, health

app = Chalice(app_name="ems")
http.install(app)
events.install(app)


@app.route("/health", methods=["GET"])
@http.endpoint
def get_health() -> Response:
    report = health.check()
    return Response(body=report.as_dict(), status_code=200 if report.healthy else 503)
