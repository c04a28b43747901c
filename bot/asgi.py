"""The ASGI entry point for uvicorn workers: ``bot.asgi:app``, built from the environment.

Each worker also runs the outbox sender in the background once WeChat credentials are set: senders
share the outbox without overlap, so any number of workers may run one.
"""

from bot.app import create_app
from bot.settings import load_settings

app = create_app(load_settings(), send_outbox=True)
