"""Linear through its GraphQL API (no official Python client), with httpx."""

from __future__ import annotations

from typing import Any

import httpx

from shared.lib.trackers.config import LinearTracker
from shared.lib.trackers.protocol import (
    IssueRef,
    TrackerRefusedError,
    TrackerUnavailableError,
    failure_for,
)

CREATE = """mutation Open($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url } }
}"""
COMMENT = """mutation Comment($input: CommentCreateInput!) {
  commentCreate(input: $input) { success }
}"""
STATES = """query States($team: String!) {
  team(id: $team) { states { nodes { id type } } }
}"""
UPDATE = """mutation Close($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) { success }
}"""


class LinearIssues:
    name = "linear"

    def __init__(
        self,
        spec: LinearTracker,
        *,
        token: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._spec = spec
        self._client = httpx.AsyncClient(
            timeout=timeout_s, transport=transport, headers={"Authorization": token}
        )

    async def open_issue(self, *, title: str, body: str) -> IssueRef:
        data = await self._graphql(
            CREATE, {"input": {"teamId": self._spec.team_id, "title": title, "description": body}}
        )
        issue = data["issueCreate"]["issue"]
        return IssueRef(key=str(issue["id"]), url=issue.get("url"))

    async def comment(self, ref: IssueRef, *, body: str) -> None:
        await self._graphql(COMMENT, {"input": {"issueId": ref.key, "body": body}})

    async def close(self, ref: IssueRef, *, body: str) -> None:
        await self.comment(ref, body=body)
        state = self._spec.done_state_id or await self._done_state()
        await self._graphql(UPDATE, {"id": ref.key, "input": {"stateId": state}})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _done_state(self) -> str:
        data = await self._graphql(STATES, {"team": self._spec.team_id})
        for state in data["team"]["states"]["nodes"]:
            if state.get("type") == "completed":
                return str(state["id"])
        raise TrackerRefusedError(
            f"Linear team {self._spec.team_id} has no completed state; set done_state_id"
        )

    async def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(
                self._spec.api_url, json={"query": query, "variables": variables}
            )
        except httpx.HTTPError as error:
            raise TrackerUnavailableError(f"Linear unreachable: {type(error).__name__}") from None
        if not response.is_success:
            raise failure_for(response.status_code, f"Linear answered {response.status_code}")
        answer: dict[str, Any] = response.json()
        if answer.get("errors"):
            raise TrackerRefusedError(f"Linear refused: {answer['errors'][0].get('message')}")
        data: dict[str, Any] = answer.get("data") or {}
        return data
