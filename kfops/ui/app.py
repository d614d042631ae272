"""The `kfops ui` web application: read-only pages over one store.

Starlette with server-rendered HTML (kfops.ui.pages); every route is a GET that reads the store
through kfops.runs and kfops.registry, so the UI shows the same facts as `kfops runs` and
`kfops models`, for local and S3 stores alike. Handlers are plain functions, which Starlette runs
in its thread pool, so a slow S3 read never blocks the event loop.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from kfops import errors, lineage, registry, runs
from kfops.runs import monitoring as runs_monitoring
from kfops.store import base
from kfops.ui import pages

# Stored reports are standalone pages (inline CSS and SVG, Evidently's inline scripts in the
# monitoring report); they may not fetch anything or be framed by another site.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "script-src 'unsafe-inline'; frame-src 'self' data: about:; frame-ancestors 'self'"
)
_PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def create_app(store: base.Store) -> Starlette:
    """The application over `store` (a local directory or S3 store)."""
    index = runs.RunIndex(store)
    reg = registry.Registry(store)
    uri = store.uri

    def html(text: str, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code, headers=_PAGE_HEADERS)

    def runs_list(request: Request) -> Response:
        return html(pages.runs_page(index.list(), uri))

    def run_detail(request: Request) -> Response:
        return html(pages.run_page(index.show(request.path_params["run_id"]), uri))

    def run_report(request: Request) -> Response:
        body = index.report(request.path_params["run_id"], request.path_params["name"])
        headers = {**_PAGE_HEADERS, "content-security-policy": REPORT_CSP}
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    def compare(request: Request) -> Response:
        ids = request.query_params.getlist("run")
        if len(ids) < 2:
            raise errors.ConfigError("tick two or more runs in the runs table to compare them")
        changed_only = request.query_params.get("changed") == "1"
        return html(pages.compare_page(index.compare(ids), changed_only, uri))

    def models_list(request: Request) -> Response:
        models = [
            {"name": name, "champion": reg.champion(name), "versions": reg.versions(name)}
            for name in reg.models()
        ]
        return html(pages.models_page(models, uri))

    def model_detail(request: Request) -> Response:
        name = request.path_params["name"]
        names = reg.models()
        if name not in names:
            raise errors.NotFound(
                f"no model {name!r} in {uri}; models: {', '.join(names) or 'none'}"
            )
        versions = [_version(reg, name, v) for v in reg.versions(name)]
        pointer = reg.champion_pointer(name)
        wanted = request.query_params.get("version") or (pointer or {}).get("version")
        if not wanted and versions:
            wanted = versions[-1]["version"]
        line = lineage.model_lineage(reg, index, name, wanted) if wanted else None
        checks = [
            info
            for info in index.list(experiment=runs_monitoring.PIPELINE)
            if (info.model or {}).get("name") == name
        ]
        return html(pages.model_page(name, versions, pointer, line, checks, uri))

    def health(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    def not_found(request: Request, exc: Exception) -> Response:
        return html(pages.error_page(404, str(exc), uri), 404)

    def bad_request(request: Request, exc: Exception) -> Response:
        return html(pages.error_page(400, str(exc), uri), 400)

    def unavailable(request: Request, exc: Exception) -> Response:
        return html(pages.error_page(502, f"the store did not answer: {exc}", uri), 502)

    routes = [
        Route("/", runs_list),
        Route("/runs", lambda request: RedirectResponse("/", 307)),
        Route("/runs/{run_id}", run_detail),
        Route("/runs/{run_id}/reports/{name}", run_report),
        Route("/compare", compare),
        Route("/models", models_list),
        Route("/models/{name}", model_detail),
        Route("/healthz", health),
    ]
    handlers: dict[Any, Any] = {
        errors.NotFound: not_found,
        errors.ConfigError: bad_request,
        errors.StorageError: unavailable,
    }
    return Starlette(routes=routes, exception_handlers=handlers)


def _version(reg: registry.Registry, name: str, version: str) -> dict[str, Any]:
    manifest = reg.manifest(name, version)
    metadata = manifest.get("metadata") or {}
    return {
        "version": version,
        "created_at": manifest.get("created_at"),
        "metrics": metadata.get("metrics") or {},
        "lineage": metadata.get("lineage") or {},
    }
