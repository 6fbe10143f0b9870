"""Keeps ``uvicorn main:app --port 8000`` working: the all-in-one service (see ``intellizap serve``)."""

from intellizap.app import Roles, create_app

app = create_app(roles=Roles(migrate=True, worker=True))
