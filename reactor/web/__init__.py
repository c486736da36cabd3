"""The HTTP layer, served by uvicorn inside the reactor's task group: health, readiness, metrics."""
