"""The web app: health, metrics, the conflict review pages and JSON API, plus the connectors' routes."""

from engine.web.app import WebServices, create_web_app

__all__ = ["WebServices", "create_web_app"]
