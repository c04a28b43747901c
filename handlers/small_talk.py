"""Small talk: thanks, 好的, 哈哈, a thumbs-up or a WeChat emoticon get a friendly word back, never the
"not found" text; asking for a person (人工客服) is told how questions reach the organizers."""

import re
import unicodedata

from handlers.dispatch import Context, FilterResult, Router
from handlers.matching import AsksAbout
from handlers.replies import Text
from models import texts

small_talk_router = Router("small_talk")

# WeChat sends its emoticons inside text as "[微笑]" or as codes such as "/::)".
_EMOTICONS = re.compile(r"\[[^\[\]\s]{1,6}\]|/:[!-~]{1,8}")
_SYMBOL_CATEGORIES = frozenset({"So", "Sk", "Mn", "Cf", "Zs"})


def only_emoji(context: Context) -> FilterResult:
    """Passes for a message of emoji and emoticons only (👍, [微笑], /::)), which normalises to nothing."""
    raw = context.get("raw_text").strip()
    rest = _EMOTICONS.sub("", raw)
    if not raw or "?" in rest or "？" in rest:
        return False
    return all(unicodedata.category(character) in _SYMBOL_CATEGORIES for character in rest)


@small_talk_router.handler(only_emoji)
@small_talk_router.handler(AsksAbout("small_talk"))
def handle_small_talk(text: str) -> Text:
    thanked = any(word in text for word in texts.THANKS_WORDS)
    return Text(texts.SMALL_TALK_THANKS if thanked else texts.SMALL_TALK)


@small_talk_router.handler(AsksAbout("human"), topic="human")
def handle_human() -> Text:
    return Text(texts.ASK_A_PERSON)
