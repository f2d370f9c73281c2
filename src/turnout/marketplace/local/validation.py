"""Check every request against botocore's own MTurk service model, and every response too.

Why the model and not hand-written checks: the operation list, required members, enums,
lengths and patterns then follow the installed botocore, so a model change shows up as a
failing test instead of silent drift. botocore's client checks only required members,
Python types and ``min`` (verified against botocore); ``max``, ``pattern`` and ``enum``
are the server's job, and so are the cross-field rules the model cannot express, which
live at the bottom of this module.

Error wording follows AWS's coral validator as MTurk emits it: ``1 validation error
detected: Value '0.9752' at 'bonusAmount' failed to satisfy constraint: Member must satisfy
regular expression pattern: ^[0-9]+(\\.)?[0-9]{0,2}$`` (observed, Dallinger#1052) and
``Value null at 'requesterFeedback' failed to satisfy constraint: Member must not be null``
(observed, boto/boto3#1222). The length/value/enum phrasings are coral's standard ones but
were not seen from MTurk itself: GUESS.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from .errors import ParameterValidationError, SerializationException, ValidationException

__all__ = [
    "OutputDrift",
    "check_cross_field",
    "operation_model",
    "service_model",
    "validate_input",
    "validate_output",
]


TIMESTAMP_MIN = -2208988800  # 1900-01-01: a past ExpireAt still means "expire now"
TIMESTAMP_MAX = 4102444800  # 2100-01-01
MONEY_DIGITS = 9  # whole-dollar digits accepted in a CurrencyAmount

@functools.cache

def service_model() -> ServiceModel:
    """botocore's MTurk model, loaded once per process."""
    return botocore.session.get_session().get_service_model("mturk")


def operation_model(name: str) -> OperationModel:
    return service_model().operation_model(name)


# --------------------------------------------------------------------------- input


def _coral_name(member: str) -> str:
    # Coral lowercases only the first character: "BonusAmount" -> "bonusAmount".
    return member[:1].lower() + member[1:]


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, (list, dict)):
        return "'" + json.dumps(value, separators=(",", ":")) + "'"
    return f"'{value}'"


class _Checker:
    """Walks one value against one shape, collecting coral-style constraint messages."""

    def __init__(self, *, for_output: bool = False) -> None:
        self.errors: list[str] = []
        self.type_errors: list[str] = []
        self.for_output = for_output

    def fail(self, value: Any, path: str, constraint: str) -> None:
        self.errors.append(f"Value {_render(value)} at '{path}' failed to satisfy constraint: {constraint}")

    def check(self, shape: Shape, value: Any, path: str) -> None:
        kind = shape.type_name
        if kind == "structure":
            self._structure(shape, value, path)
        elif kind == "list":
            self._list(shape, value, path)
        elif kind == "string":
            self._string(shape, value, path)
        elif kind in ("integer", "long"):
            self._integer(shape, value, path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.type_errors.append(f"{path or 'input'}: expected a boolean, got {type(value).__name__}")
        elif kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.type_errors.append(f"{path or 'input'}: expected epoch seconds, got {type(value).__name__}")
            elif not TIMESTAMP_MIN <= value <= TIMESTAMP_MAX:
                # GUESS: MTurk's bound is not documented; beyond these, datetime cannot even
                # hold the instant (ExpireAt=1e12 is the year 33658), so refuse as a constraint.
                self.fail(value, path, "Member must be a timestamp between 1900-01-01 and 2100-01-01")
        elif kind in ("double", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.type_errors.append(f"{path or 'input'}: expected a number, got {type(value).__name__}")
        else:  # pragma: no cover - MTurk's model has no maps or blobs today
            self.type_errors.append(f"{path}: shape type {kind} is not supported by the validator")

    def _structure(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            self.type_errors.append(f"{path or 'input'}: expected a JSON object, got {type(value).__name__}")
            return
        members = shape.members
        for key in value:
            if key not in members:
                # GUESS: AWS JSON services often ignore unknown members; turnout refuses them
                # so a typo in a hand-written client cannot pass silently.
                where = f" in {path}" if path else ""
                self.type_errors.append(f"unknown member '{key}'{where}; valid members: {', '.join(members)}")
        if not self.for_output:
            for name in shape.required_members:
                if value.get(name) is None:
                    self.fail(None, self._join(path, name), "Member must not be null")
        for name, member_shape in members.items():
            if name in value and value[name] is not None:
                self.check(member_shape, value[name], self._join(path, name))

    @staticmethod
    def _join(path: str, member: str) -> str:
        return f"{path}.{_coral_name(member)}" if path else _coral_name(member)

    def _list(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.type_errors.append(f"{path}: expected a JSON array, got {type(value).__name__}")
            return
        meta = shape.metadata
        if "min" in meta and len(value) < meta["min"]:
            self.fail(value, path, f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            self.fail(value, path, f"Member must have length less than or equal to {meta['max']}")
        for index, item in enumerate(value, start=1):
            # Coral numbers list items from 1 and inserts ".member".
            self.check(shape.member, item, f"{path}.{index}.member")

    def _string(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.type_errors.append(f"{path}: expected a string, got {type(value).__name__}")
            return
        meta = shape.metadata
        if "\x00" in value:  # GUESS: MTurk's XML documents cannot carry NUL; refuse it everywhere
            self.fail(value.replace("\x00", "\\0")[:200], path, "Member must not contain NUL characters")
        if shape.name == "CurrencyAmount" and len(value.partition(".")[0]) > MONEY_DIGITS:
            # GUESS: MTurk's limit is unknown; Decimal arithmetic on 400-digit rewards failed.
            self.fail(value[:40], path, f"Member must be less than {10 ** MONEY_DIGITS} dollars")
        if "min" in meta and len(value) < meta["min"]:
            self.fail(value, path, f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            self.fail(value, path, f"Member must have length less than or equal to {meta['max']}")
        if "pattern" in meta and re.search(meta["pattern"], value) is None:
            self.fail(value, path, f"Member must satisfy regular expression pattern: {meta['pattern']}")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")

    def _integer(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.type_errors.append(f"{path}: expected an integer, got {type(value).__name__}")
            return
        meta = shape.metadata
        bits = 31 if shape.type_name == "integer" else 63  # Java Integer / Long, as the service decodes
        if not -(2**bits) <= value < 2**bits:
            self.type_errors.append(f"{path}: {value if len(str(value)) < 40 else 'the number'} does not fit "
                                    f"a {shape.type_name}")
            return
        if "min" in meta and value < meta["min"]:
            self.fail(value, path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            self.fail(value, path, f"Member must have value less than or equal to {meta['max']}")


def validate_input(operation: str, params: Any) -> None:
    """Raise if ``params`` (the decoded JSON body) breaks the operation's input shape.

    Raises ``SerializationException`` for wrong JSON types and unknown members, and
    ``ValidationException`` (all constraint failures in one message, as coral does).
    """
    shape = operation_model(operation).input_shape
    if shape is None:
        if params not in ({}, None):
            raise SerializationException(f"{operation} takes no parameters")
        return
    checker = _Checker()
    checker.check(shape, params, "")
    if checker.type_errors:
        raise SerializationException("; ".join(checker.type_errors))
    if checker.errors:
        n = len(checker.errors)
        noun = "error" if n == 1 else "errors"
        raise ValidationException(f"{n} validation {noun} detected: " + "; ".join(checker.errors))


# --------------------------------------------------------------------------- output


class OutputDrift(AssertionError):
    """A response the marketplace produced does not fit botocore's output shape."""


def validate_output(operation: str, payload: Any) -> None:
    """Fail loudly if a response body drifts from the model.

    botocore does not validate responses (verified): ``{"AvailableBalance":
    5}`` would reach callers as an int. Two checks run: botocore's own ``ParamValidator``
    (types, unknown keys) and this module's walker (patterns, enums, lengths), which
    ParamValidator skips.
    """
    shape = operation_model(operation).output_shape
    if shape is None:
        if payload:
            raise OutputDrift(f"{operation} has no output shape but returned {payload!r}")
        return
    report = ParamValidator().validate(payload, shape)
    problems: list[str] = []
    if report.has_errors():
        problems.append(report.generate_report())
    checker = _Checker(for_output=True)
    checker.check(shape, payload, "")
    problems.extend(checker.type_errors)
    problems.extend(checker.errors)
    if problems:
        raise OutputDrift(f"{operation} response drifts from botocore's model:\n" + "\n".join(problems))


# --------------------------------------------------------------------------- cross-field

# Documented limits the model does not carry. Each line names its source.
MAX_QUALIFICATION_REQUIREMENTS = 10  # model doc: "between zero and ten Qualification requirements"
MAX_QUESTION_BYTES = 65_535  # model doc, CreateHIT.Question and CreateQualificationType.Test
MAX_NOTIFY_WORKERS = 100  # model doc, NotifyWorkers.WorkerIds
MAX_NOTIFY_SUBJECT = 200  # model doc, NotifyWorkers.Subject
MAX_NOTIFY_TEXT = 4_096  # model doc, NotifyWorkers.MessageText
LIFETIME_RANGE = (30, 31_536_000)  # 30 s to 1 year (legacy MTurk docs)
ASSIGNMENT_DURATION_RANGE = (30, 31_536_000)  # 30 s to 1 year: recalled, not re-verified (GUESS)
AUTO_APPROVAL_RANGE = (0, 2_592_000)  # 0 to 30 days (MTurk HIT attributes page)
MAX_ASSIGNMENTS_RANGE = (1, 1_000_000_000)  # GUESS: legacy docs' upper bound, recalled
TITLE_MAX = 128  # GUESS: legacy CreateHIT docs, recalled
DESCRIPTION_MAX = 2_000  # GUESS: legacy CreateHIT docs, recalled
KEYWORDS_MAX = 1_000  # GUESS: legacy CreateHIT docs, recalled
ANNOTATION_MAX = 255  # GUESS: legacy CreateHIT docs, recalled


def _invalid(param: str, value: Any, why: str = "") -> ParameterValidationError:
    tail = f" {why}" if why else ""
    return ParameterValidationError(f'The value "{value}" is not valid for the parameter {param}.{tail}')


def _in_range(params: Mapping[str, Any], name: str, bounds: tuple[int, int]) -> None:
    if name in params and not bounds[0] <= params[name] <= bounds[1]:
        raise _invalid(name, params[name], f"It must be between {bounds[0]} and {bounds[1]}.")


def _max_len(params: Mapping[str, Any], name: str, limit: int) -> None:
    if name in params and len(params[name]) > limit:
        raise _invalid(name, params[name][:40] + "...", f"It must be at most {limit} characters long.")


def _check_hit_common(params: Mapping[str, Any], *, needs_question: bool) -> None:
    _in_range(params, "AssignmentDurationInSeconds", ASSIGNMENT_DURATION_RANGE)
    _in_range(params, "AutoApprovalDelayInSeconds", AUTO_APPROVAL_RANGE)
    _in_range(params, "LifetimeInSeconds", LIFETIME_RANGE)
    _in_range(params, "MaxAssignments", MAX_ASSIGNMENTS_RANGE)
    _max_len(params, "Title", TITLE_MAX)
    _max_len(params, "Description", DESCRIPTION_MAX)
    _max_len(params, "Keywords", KEYWORDS_MAX)
    _max_len(params, "RequesterAnnotation", ANNOTATION_MAX)
    for name in ("Title", "Description"):
        if name in params and not params[name].strip():
            raise _invalid(name, params[name], "It must not be empty.")  # GUESS
    reqs = params.get("QualificationRequirements") or []
    if len(reqs) > MAX_QUALIFICATION_REQUIREMENTS:
        raise _invalid("QualificationRequirements", f"{len(reqs)} requirements", "A HIT can have at most 10.")
    if needs_question:
        has_question = bool(params.get("Question"))
        has_layout = bool(params.get("HITLayoutId"))
        # model doc: "Either a Question parameter or a HITLayoutId parameter must be provided."
        if has_question == has_layout:
            raise ParameterValidationError(
                "Exactly one of Question or HITLayoutId must be provided."  # wording GUESS
            )
        if has_question and len(params["Question"].encode("utf-8")) > MAX_QUESTION_BYTES:
            raise _invalid("Question", "(too long)", "It must not be larger than 65535 bytes.")


def check_cross_field(operation: str, params: Mapping[str, Any]) -> None:
    """Rules the model's shapes cannot express; run after ``validate_input`` succeeded.

    They answer ``ParameterValidationError``, the code MTurk was observed to use for
    well-formed but unacceptable values (errors.py). GUESS: that MTurk uses the same code
    for these cross-field rules.
    """
    if operation in ("CreateHIT", "CreateHITWithHITType"):
        _check_hit_common(params, needs_question=True)
    elif operation == "CreateHITType":
        _check_hit_common(params, needs_question=False)
    elif operation == "ListBonusPayments":
        # model doc: "Either the HITId parameter or the AssignmentId parameter must be specified"
        if bool(params.get("HITId")) == bool(params.get("AssignmentId")):
            raise ParameterValidationError("Exactly one of HITId or AssignmentId must be specified.")  # GUESS: both given
    elif operation in ("CreateQualificationType", "UpdateQualificationType"):
        # model doc: Test "cannot be specified if AutoGranted is true"; Test needs TestDurationInSeconds.
        if params.get("Test") and params.get("AutoGranted"):
            raise ParameterValidationError("A Qualification type with a Test cannot be AutoGranted.")
        if params.get("Test") and "TestDurationInSeconds" not in params:
            raise ParameterValidationError("TestDurationInSeconds is required when Test is specified.")
        for name in ("Test", "AnswerKey"):
            if params.get(name) and len(params[name].encode("utf-8")) > MAX_QUESTION_BYTES:
                raise _invalid(name, "(too long)", "It must not be larger than 65535 bytes.")
        if operation == "CreateQualificationType" and not params["Name"].strip():
            raise _invalid("Name", params["Name"], "It must not be empty.")  # GUESS
    elif operation == "NotifyWorkers":
        if not 1 <= len(params["WorkerIds"]) <= MAX_NOTIFY_WORKERS:
            raise _invalid("WorkerIds", f"{len(params['WorkerIds'])} workers", "Between 1 and 100 workers may be notified at once.")
        _max_len(params, "Subject", MAX_NOTIFY_SUBJECT)
        _max_len(params, "MessageText", MAX_NOTIFY_TEXT)
    elif operation == "CreateAdditionalAssignmentsForHIT" and params["NumberOfAdditionalAssignments"] < 1:
        raise _invalid("NumberOfAdditionalAssignments", params["NumberOfAdditionalAssignments"], "It must be at least 1.")  # GUESS
