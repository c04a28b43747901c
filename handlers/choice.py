"""Two topics named as much as each other ("时间地点"): a short numbered choice rather than a guess. The
follower's next number picks from it (``requested_topics`` reads the choice back from their row)."""

from handlers.dispatch import Context, FilterResult, Router
from handlers.matching import choice_list
from handlers.replies import Text
from models import texts
from models.activity import Activity

choice_router = Router("choice")


def offers_choice(context: Context) -> FilterResult:
    """Extracts ``choice_topics``: the close topics a message names and nothing else ("时间和地点？")."""
    mentions = context.get("mentions")
    if len(mentions.close) < 2:  # most messages: one topic, no second look at the text
        return False
    topics = context.get("keywords").choice(context.get("text"), mentions)
    return {"choice_topics": topics} if topics else False


@choice_router.handler(offers_choice)
def handle_choice(choice_topics: tuple[str, ...], activity: Activity) -> Text:
    # Numbered in this reply, so a bare number next answers one of them.
    activity.last_list = choice_list(choice_topics)
    return Text(texts.topic_choice(choice_topics))
