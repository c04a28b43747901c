"""Topic handlers. Each module owns one router; ``ROUTERS`` is their order: the first match wins.

Adding a topic is one module and one line here. Order matters where words overlap: a talk reference
("第二场", a speaker's name) beats the general topics, "直播回放" asks for materials before livestream,
a message naming two topics equally ("时间地点") is offered a choice before any of them answers, small
talk (谢谢, 👍) only when no topic is named, and help catches everything left over. 删除我的信息 reaches
``personal_data`` before an open form takes it. The organisers' own ``[[rules]]`` come before every built-in
topic (after follow events and the registration form, whose answers must reach the form).
"""

from handlers.admin import admin_router
from handlers.agenda import agenda_router
from handlers.checkin import checkin_router
from handlers.choice import choice_router
from handlers.dispatch import Router
from handlers.help import help_router
from handlers.livestream import livestream_router
from handlers.materials import materials_router
from handlers.now_next import now_next_router
from handlers.personal_data import personal_data_router
from handlers.registration import registration_router
from handlers.rules import rules_router
from handlers.schedule import time_router
from handlers.small_talk import small_talk_router
from handlers.subscribe_messages import subscribe_messages_router
from handlers.subscription import subscription_router
from handlers.talks import talk_router
from handlers.venue import venue_router

ROUTERS: list[Router] = [
    subscription_router,
    subscribe_messages_router,
    personal_data_router,
    registration_router,
    checkin_router,
    admin_router,
    rules_router,
    talk_router,
    choice_router,
    materials_router,
    now_next_router,
    time_router,
    venue_router,
    livestream_router,
    agenda_router,
    small_talk_router,
    help_router,
]
