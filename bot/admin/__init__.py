"""The admin API under ``/admin/api``: one router per resource, all behind the bearer token.

Every resource router is included in ``admin_api_router``, which carries the auth dependency, so a new
route cannot be added without auth.
"""

from fastapi import APIRouter

from bot.admin.audit import audit_router
from bot.admin.broadcasts import broadcasts_router
from bot.admin.errors import INPUT_PROBLEMS_RESPONSE
from bot.admin.events import events_router
from bot.admin.inbox import inbox_router
from bot.admin.qr import qr_router
from bot.admin.registrations import registrations_router, walk_ins_router
from bot.deps import AdminDep

# Every route's 422 is declared as the Chinese answer of bot.admin.errors, so the schema matches what is sent.
admin_api_router = APIRouter(prefix="/admin/api", dependencies=[AdminDep], responses=INPUT_PROBLEMS_RESPONSE)

# Resource routers are included below, one line each.
admin_api_router.include_router(events_router)
admin_api_router.include_router(registrations_router)
admin_api_router.include_router(walk_ins_router)
admin_api_router.include_router(broadcasts_router)
admin_api_router.include_router(inbox_router)
admin_api_router.include_router(qr_router)
admin_api_router.include_router(audit_router)
