"""psiTurk's numbered experiment errors, rendered as the project's error page."""

from __future__ import annotations

from typing import Any

# name -> (number, what a participant is told). Numbers are psiTurk's; texts are ours.
EXPERIMENT_ERRORS: dict[str, tuple[int, str]] = {
    "status_incorrectly_set": (1000, "Your record for this task is in an unexpected state."),
    "hit_assign_worker_id_not_set_in_mturk": (1001, "The HIT or assignment ID is missing from the link."),
    "hit_assign_worker_id_not_set_in_consent": (1002, "The HIT, assignment or worker ID is missing from the consent link."),
    "hit_assign_worker_id_not_set_in_exp": (1003, "The HIT, assignment, worker ID or mode is missing from the experiment link."),
    "hit_assign_appears_in_database_more_than_once": (1004, "This assignment is recorded more than once."),
    "already_started_exp": (1008, "You have already started this experiment and cannot restart it."),
    "already_started_exp_mturk": (1009, "You have already started this HIT and cannot restart it."),
    "already_did_exp_hit": (1010, "You have already taken part in this study; it can be done only once."),
    "tried_to_quit": (1011, "Your decision to leave the experiment could not be recorded."),
    "intermediate_save": (1012, "Your progress could not be saved."),
    "improper_inputs": (1013, "The request was missing a required value."),
    "browser_type_not_allowed": (1014, "This experiment cannot be done in your browser or on your device."),
    "api_server_not_reachable": (1015, "The study server could not be reached."),
    "ad_not_found": (1016, "This study's advertisement could not be found."),
    "error_setting_worker_complete": (1017, "Your completion could not be recorded."),
    "hit_not_registered_with_ad_server": (1018, "This HIT is not registered with the study server."),
    "template_unsafe": (1019, "A page of this study is not safe to show."),
    "insert_mode_failed": (1020, "A page of this study lacks the link the server expects (workerId={{ workerid }})."),
    "page_not_found": (404, "That page does not exist."),
    "in_debug": (2005, "This is a debugging session."),
    "unknown_error": (9999, "An unexpected error occurred."),
}


class ExperimentError(Exception):
    """Raise with a psiTurk error name; the server renders the numbered error page (HTTP 200)."""

    def __init__(self, value: str, **template_vars: Any) -> None:
        super().__init__(value)
        if value not in EXPERIMENT_ERRORS:
            value = "unknown_error"
        self.value = value
        self.errornum, self.errordesc = EXPERIMENT_ERRORS[value]
        self.template_vars = template_vars

    def __str__(self) -> str:
        return f"{self.errornum}: {self.value}"

    # psiTurk's ExperimentError exposed these.
    @property
    def experiment_errors(self) -> dict[str, int]:
        return {name: num for name, (num, _) in EXPERIMENT_ERRORS.items()}

    def error_page(self, request: Any, contact_address: str) -> Any:
        from flask import render_template

        # psiTurk passes the query string to the page as variables. One named like
        # render_template's own parameter must not turn the error page into a 500.
        context = {k: v for k, v in request.args.items() if k != "template_name_or_list"}
        context.update(self.template_vars)
        context.update(errornum=self.errornum, errordesc=self.errordesc, contact_address=contact_address)
        return render_template("error.html", **context)


class ExperimentApiError(Exception):
    """A JSON error from a participant-facing API route (psiTurk's shape: ``{"message": ...}``)."""

    status_code = 500

    def __init__(self, message: str, status_code: int | None = None, payload: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.payload = payload

    def to_dict(self) -> dict[str, Any]:
        body = dict(self.payload or ())
        body["message"] = self.message
        return body


class InvalidUsageError(ExperimentApiError):
    status_code = 400


InvalidUsage = InvalidUsageError
