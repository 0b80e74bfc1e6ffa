"""A first end-to-end check of the handlers on moto (the full matrix lives beside it)."""

from tests.helpers import api_event, body_of


def test_given_a_running_run_when_cancelled_twice_then_both_answers_are_202(runs_handler, cancel_handler):
    # Given
    assert runs_handler(api_event("POST", "/runs", {"run_id": "r1"}))["statusCode"] == 201
    assert runs_handler(api_event("POST", "/runs/r1/start"))["statusCode"] == 200
    # When
    first = cancel_handler(api_event("POST", "/runs/r1/cancel", {"reason": "user"}))
    second = cancel_handler(api_event("POST", "/runs/r1/cancel"))
    # Then
    assert (first["statusCode"], body_of(first)["outcome"]) == (202, "interrupted")
    assert (second["statusCode"], body_of(second)["outcome"]) == (202, "already_interrupted")
    assert body_of(second)["cancel"]["reason"] == "user"
