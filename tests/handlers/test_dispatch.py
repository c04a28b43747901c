"""The dispatcher knows at registration which handlers need the database, and the content path stops
before them instead of running them."""

from handlers import ROUTERS
from handlers.dispatch import Context, Dispatcher, Router, needs_database
from handlers.replies import Text


def spec_of(callback_name: str):
    return next(spec for router in ROUTERS for spec in router.handlers if spec.callback.__name__ == callback_name)


def test_needing_the_database_is_known_from_parameters_and_marked_filters():
    assert spec_of("handle_agenda").needs_database is False
    assert spec_of("handle_venue").needs_database is False
    assert spec_of("handle_register").needs_database is True  # names ``session``
    assert spec_of("handle_form_message").needs_database is True  # its ``open_form`` filter is marked


def build_dispatcher(calls: list[str]) -> Dispatcher:
    router = Router("probe")

    @needs_database
    def reads_row(context: Context) -> bool:
        calls.append("filter")
        return context.get("follower") == "row"

    @router.handler(lambda context: context.get("text") == "db-filter", reads_row)
    def by_filter() -> Text:
        return Text("filter")

    @router.handler(lambda context: context.get("text") == "db-handler")
    def by_parameter(session) -> Text:
        calls.append("handler")
        return Text("handler")

    @router.handler(lambda context: True)
    def content_only() -> Text:
        return Text("content")

    return Dispatcher([router])


def test_without_the_database_dispatch_stops_before_a_handler_that_needs_it():
    calls: list[str] = []
    dispatcher = build_dispatcher(calls)

    assert dispatcher.dispatch(Context({"text": "db-filter"})) is None
    assert dispatcher.dispatch(Context({"text": "db-handler"})) is None
    assert dispatcher.dispatch(Context({"text": "other"})).reply == Text("content")
    assert calls == []


def test_with_the_database_the_same_handlers_run():
    calls: list[str] = []
    dispatcher = build_dispatcher(calls)

    assert dispatcher.dispatch(Context({"text": "db-filter", "session": object(), "follower": "row"})).reply == Text(
        "filter"
    )
    assert dispatcher.dispatch(Context({"text": "db-handler", "session": object()})).reply == Text("handler")
    assert calls == ["filter", "handler"]
