"""Pages that never touch the database: /, /favicon.ico, psiturk.js, /consent, raw templates.

SQLite only: nothing here depends on the backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IDS = "hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox"


def test_index_renders_default_page_uncached(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert b"This experiment server is running" in response.data
    assert "no-cache" in response.headers["Cache-Control"]


def test_index_uses_the_projects_default_html_when_it_has_one(make_app, project_file) -> None:
    project_file("templates/default.html", "<h1>Welcome to psiTurk!</h1>")
    assert make_app().test_client().get("/").data == b"<h1>Welcome to psiTurk!</h1>"


def test_favicon_is_served_from_project_static(make_app, project_file) -> None:
    project_file("static/favicon.ico", "ICON")
    response = make_app().test_client().get("/favicon.ico")
    assert response.status_code == 200
    assert response.data == b"ICON"


def test_missing_favicon_is_404_not_500(client) -> None:
    assert client.get("/favicon.ico").status_code == 404


def test_psiturk_js_is_the_servers_own_library(client) -> None:
    response = client.get("/static/js/psiturk.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert b"turnout-participant-token" in response.data
    assert b"PsiTurk" in response.data


def test_psiturk_js_wins_over_an_old_copy_shipped_in_the_project(make_app, project_file) -> None:
    project_file("static/js/psiturk.js", "/* psiTurk 2.3 copy */")
    response = make_app().test_client().get("/static/js/psiturk.js")
    assert b"psiTurk 2.3 copy" not in response.data
    assert b"turnout-participant-token" in response.data


def test_project_static_files_are_served(client) -> None:
    response = client.get("/static/js/task.js")
    assert response.status_code == 200
    assert response.data == (Path(__file__).parents[1] / "fixtures/minimal_project/static/js/task.js").read_bytes()


# --- /consent --------------------------------------------------------------------------


def test_consent_renders_project_template_with_mode_inserted(client) -> None:
    response = client.get(f"/consent?{IDS}")
    assert response.status_code == 200
    assert b'href="/exp?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox"' in response.data
    assert "no-cache" in response.headers["Cache-Control"]


def test_consent_does_not_create_a_participant(app, count_participants) -> None:
    app.test_client().get(f"/consent?{IDS}")
    assert count_participants(app) == 0


def test_consent_link_that_already_carries_mode_gets_it_twice_and_still_works(make_app, project_file) -> None:
    project_file("templates/consent.html",
                 '<a id="agree" href="/exp?hitId={{ hitid }}&assignmentId={{ assignmentid }}'
                 '&workerId={{ workerid }}&mode={{ mode }}">I agree</a>')
    client = make_app().test_client()
    page = client.get(f"/consent?{IDS.replace('sandbox', 'debug')}").data.decode()
    link = page.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert link.endswith("&mode=debug&mode=debug")
    response = client.get(link)
    assert response.status_code == 200
    assert b"exp for W1:A1" in response.data


def test_consent_values_are_escaped_not_executed(client) -> None:
    response = client.get("/consent?hitId=H1&assignmentId=A1&workerId=W1&mode=sandbox&x={{7*7}}")
    assert b"49" not in response.data


# --- raw template files for preloadPages ----------------------------------------------


def test_raw_template_is_served_byte_for_byte(client) -> None:
    response = client.get("/raw.html")
    assert response.status_code == 200
    assert response.data == b"<p>Raw page with a literal {{ not_rendered }} marker.</p>\n"


def test_raw_template_in_a_subfolder_is_served(client) -> None:
    response = client.get("/instructions/instruct-1.html")
    assert response.status_code == 200
    assert response.data == b'<div class="instructions">Page 1</div>\n'


def test_unknown_page_is_404(client) -> None:
    assert client.get("/no-such-page.html").status_code == 404


@pytest.mark.parametrize("path", [
    "/../config.txt",
    "/%2e%2e/config.txt",
    "/..%2fconfig.txt",
    "/instructions/../../config.txt",
    "/instructions/%2e%2e/%2e%2e/custom.py",
    "/custom.py",
    "/config.txt",
    "//etc/passwd",
    "/%2Fetc%2Fpasswd",
    "/templates/../config.txt",
])
def test_raw_pages_never_escape_the_templates_folder(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"[Server Parameters]" not in response.data
    assert b"root:" not in response.data


def test_symlink_out_of_templates_is_not_followed(make_app, project_dir: Path) -> None:
    os.symlink(project_dir / "config.txt", project_dir / "templates" / "leak.html")
    response = make_app().test_client().get("/leak.html")
    assert response.status_code == 404
    assert b"[Server Parameters]" not in response.data


def test_templates_folder_itself_is_not_listed(client) -> None:
    assert client.get("/instructions/").status_code == 404


def test_get_on_a_post_only_route_is_not_a_server_error(client) -> None:
    # psiTurk's catch-all answered 404 here; either 404 or 405 is fine, 500 is not.
    assert client.get("/inexp").status_code in (404, 405)
    assert client.get("/quitter").status_code in (404, 405)


def test_ppid_does_not_reveal_the_server_process(client) -> None:
    # psiTurk answered /ppid with its parent process id, unauthenticated (weakness 19).
    response = client.get("/ppid")
    assert response.status_code == 404
    assert not response.data.strip().isdigit()
