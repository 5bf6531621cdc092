"""A PostgreSQL server that keeps local time (its ``TimeZone`` not UTC; here UTC+14) answers
every stored moment in that zone. The appliance still shows and sends each one in UTC: the
Status page's Cluster table said the node's last heartbeat in the server's hours, labelled
GMT, and the API sent moments with the server's offset beside others in UTC."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from tests.api.client import Server, mint_token, ok
from tests.support.server import running_appliance

ADDRESS = "127.0.0.76"
KIRITIMATI = "%20-cTimeZone%3DPacific/Kiritimati"  # UTC+14 all year: no hour can match


def test_a_server_keeping_local_time_changes_no_moment_shown(
    postgresql_url: str, tmp_path: Path
) -> None:
    url = postgresql_url + KIRITIMATI
    data_dir = tmp_path / "data"
    with running_appliance(data_dir, ADDRESS, database_url=url) as running:
        server = Server(running, mint_token(data_dir, "tests", "admin", url))
        with server.client() as api:
            [node] = ok(api.get("/nodes"))
            tokens = ok(api.get("/tokens"))
        for moment in [node["last_seen"], node["started_at"], tokens[0]["created_at"]]:
            assert dt.datetime.fromisoformat(moment).utcoffset() == dt.timedelta(0), moment
        last_seen = dt.datetime.fromisoformat(node["last_seen"])
        with server.pages(server.login()) as pages:
            status = pages.get("/status")
        assert status.status_code == 200
        shown = re.search(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) GMT</td>", status.text)
        assert shown, status.text
        when = dt.datetime.strptime(shown[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        assert abs(when - last_seen) < dt.timedelta(minutes=5), (shown[1], node["last_seen"])
