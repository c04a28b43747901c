"""Persistent state: SQLAlchemy 2.0 models, the session factory and the data access they need."""

from models.base import Base
from models.follower import Follower
from models.inbound import InboundMessage

__all__ = ["Base", "Follower", "InboundMessage"]
