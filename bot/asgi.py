"""The ASGI entry point for uvicorn workers: ``bot.asgi:app``, built from the environment."""

from bot.app import create_app
from bot.settings import load_settings

app = create_app(load_settings())
