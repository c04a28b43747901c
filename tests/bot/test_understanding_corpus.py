"""What followers really type (issue 20): the realistic corpus through the real responder, with the shipped
config, before, during and after the event."""

from bot.devtools.understanding import CorpusRun, accuracy, load_corpus

TARGET = 0.95


def test_the_corpus_is_big_enough_and_covers_every_phase():
    cases = load_corpus()
    assert len(cases) >= 150
    assert {phase for case in cases for phase in case.phases} == {"before", "during", "after"}


def test_at_least_95_percent_of_realistic_messages_are_answered_right_in_every_phase(app, clock, settings):
    results = CorpusRun(app.state.services.responder, clock, settings.content).run(load_corpus())
    misses = [f"{result.phase} {result.case.text!r}: {result.got} (expected {result.case.expected})"
              for result in results if not result.right]
    for phase in ("before", "during", "after"):
        in_phase = [result for result in results if result.phase == phase]
        assert accuracy(in_phase) >= TARGET, f"{phase}: {accuracy(in_phase):.1%}\n" + "\n".join(misses)
