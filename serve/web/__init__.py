"""The port control unit's web application: server-rendered pages served by the API's own process.

Pages are Jinja2 templates rendered on the server, with no JavaScript at all
(plain HTML forms, POST-redirect-GET): nothing to download, nothing that
breaks on an isolated network, and every page works in a locked-down browser.
Pages authenticate people by a signed session cookie (:mod:`serve.web.sessions`)
and authorize with the API's permissions (:func:`serve.web.auth.require_page`),
so the route-walk test covers them like every API route.
"""

from serve.web.routes import install_web, router

__all__ = ["install_web", "router"]
